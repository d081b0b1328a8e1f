"""Stage 4b: export fine-tuning data: chat `messages` JSONL, prompt-completion JSONL (TRL's
conversational prompt-completion: the prompt is masked in the loss) and Alpaca JSON, each with a
deterministic held-out eval split (by instruction, so no instruction is in both); with `parquet` among the
formats, a Parquet copy of each file too.

The folder is a Hugging Face dataset repository: the last file written is its card, README.md
(`selfinstruct.hub.card`), whose configs name the files above, so `datasets.load_dataset(folder, "messages")`
loads it, and the card describes the run. The card is the user's to edit (`user_files`).

In a preference run (after `pairs`) the `preference` format writes train.preference.jsonl and
eval.preference.jsonl: TRL's conversational preference format (prompt, chosen, rejected as message lists)
with the scores and provenance in side fields, split by the source instruction: one row per pair a record
holds (`pair`, and a Tülu-style `pair_unconstrained`), none for a record without one.

A record that carries constraints (`constrain`) is written as an SFT example only once `verify` has
checked its answer (counted `constrained_unverified` otherwise): a constrained prompt is never paired with
an answer nobody checked.

The export writes what it is given: records matching benchmark prompts are dropped before it by the
`decontaminate` stage (their rejects; `export.decontaminate` is gone, an old config saying so is refused),
and the card states the facts the pipeline passes in (`hub.facts.RunFacts`), never read from the run here."""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...hub import CARD
from ...io.formats import (CHAT_FORMATS, CONSTRAINT_PROMPTS, CONSTRAINT_PROMPTS_FILE, FORMATS, PREFERENCE, PREFERENCE_FILE,
                           to_constraint_prompt, to_formats, to_preference)
from ...io.jsonl import atomic_write_jsonl, atomic_write_text
from ...io.parquet import PARQUET, atomic_write_parquet
from ...io.records import Counts
from ...io.settings import setting
from ..constrained import pair_texts, type_ids
from ..registry import register_stage
from ..stage import SinkStage

if TYPE_CHECKING:
    from ...hub.facts import RunFacts

# A Hub license id (apache-2.0, cc-by-4.0, other, ...) and an ISO 639 language code, or the Hub's specials
LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
LANGUAGE = re.compile(r"^([a-z]{2,3}(-[A-Za-z0-9]+)*|code|multilingual)$")


@dataclass
class ExportConfig:
    eval_fraction: float = setting(0.1, min=0.0, max=1.0, help="share of instructions held out for eval")
    formats: list[str] = setting(factory=lambda: list(FORMATS),
                                 choices=(*FORMATS, *CHAT_FORMATS, PREFERENCE, CONSTRAINT_PROMPTS, PARQUET),
                                 help="the files written; sharegpt and oasst: ShareGPT conversations and "
                                      "OpenAssistant message trees (JSONL); preference: the pairs of a preference "
                                      "run (after the pairs stage); constraints: the constrained prompts with their "
                                      "constraints, for `grpo`; parquet: a Parquet copy of each SFT format "
                                      "(the dataset card's configs then point at the copies)")
    system_prompt: str | None = setting(None, help="system message put before every example")
    license: str | None = setting(None, help="the dataset card's license, a Hub license id (e.g. cc-by-4.0, "
                                             "apache-2.0, other); null: none stated, the card says so")
    language: list[str] = setting(factory=lambda: ["en"], help="the dataset card's languages (ISO 639 codes)")

    # removed settings: an old config that sets one is refused with what to do instead (io.settings.build)
    MOVED: ClassVar[dict[str, str]] = {
        "decontaminate": "moved to its own stage: add `decontaminate` before `export` in `stages`, with "
                         "`decontaminate: {benchmarks: [...]}` (the same names or files)"}

    def check(self, err) -> None:
        if self.eval_fraction >= 1.0:
            err("eval_fraction", "must be in [0, 1)")
        if not [f for f in self.formats if f != PARQUET]:
            err("formats", f"name at least one of {', '.join((*FORMATS, PREFERENCE, CONSTRAINT_PROMPTS))}")
        if self.license is not None and not LICENSE_ID.match(self.license):
            err("license", f"{self.license!r} is not a Hub license id (lower case, no spaces: e.g. cc-by-4.0, "
                           "apache-2.0, mit, other); see https://huggingface.co/docs/hub/repositories-licenses")
        for i, code in enumerate(self.language):
            if not LANGUAGE.match(code):
                err(f"language[{i}]", f"{code!r} is not a language code (ISO 639, e.g. en, fr, deu)")


def split_ids(ids: list[str], fraction: float, seed: int) -> set[str]:
    """The eval ids: the ceil(fraction * n) ids with the smallest hash(seed, id)."""
    if fraction <= 0 or len(ids) < 2:
        return set()
    n = min(len(ids) - 1, max(1, math.ceil(fraction * len(ids))))
    order = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return set(order[:n])


@register_stage
class Export(SinkStage):
    name = "export"
    Config = ExportConfig
    reads = frozenset({"instruction", "instances"})
    user_files = (CARD,)

    @classmethod
    def reads_for(cls, cfg: ExportConfig | None) -> frozenset[str]:
        """The preference format needs the pairs (and the prompts they answer)."""
        return cls.reads | ({"pair", "prompt"} if cfg is not None and PREFERENCE in cfg.formats else set())

    def write(self, inputs, store, facts: RunFacts) -> tuple[list[str], Counts]:
        st = self.cfg
        files, counts = [], Counts()
        formats = [f for f in st.formats if f not in (PARQUET, PREFERENCE, CONSTRAINT_PROMPTS)]  # the SFT formats
        if formats or CONSTRAINT_PROMPTS in st.formats:
            files += self.write_examples(inputs, store, formats, counts)
        if PREFERENCE in st.formats:  # a preference run counts instructions by their source
            files += self.write_pairs(inputs, store, counts, "pair_" if formats else "")
        # last: the card's configs come from the files written above, its export row from these counts
        from ...hub.card import CardSettings, write_card  # (huggingface_hub and datasets: when a card is written)
        files.append(write_card(store, facts.finished(counts), CardSettings(st.license, list(st.language))))
        return files, counts

    def write_examples(self, inputs, store, formats: list[str], counts: Counts) -> list[str]:
        """train/eval files of each SFT format (and Parquet copies) and of the constrained prompts; the eval
        split holds out instructions, the same ones in every file."""
        st = self.cfg
        # two passes over the input instead of holding it: the split needs every id first
        def unverified(r) -> bool:  # a constrained prompt whose answer verify did not check
            return "constraints" in r.extra and "verify" not in r.extra

        # a source that decides the split itself (templates: no held-out row is a few-shot exemplar) sets
        # `split` on its records; the others are split here
        given = {r.id: r.extra["split"] for r in inputs.records() if r.extra.get("split") in ("train", "eval")}
        ids = [r.id for r in inputs.records() if not unverified(r)]
        eval_ids = split_ids([i for i in ids if i not in given], st.eval_fraction, self.ctx.cfg.seed)
        eval_ids |= {i for i in ids if given.get(i) == "eval"}
        out = {split: {f: [] for f in formats} for split in ("train", "eval")}
        prompts: dict[str, list] = {"train": [], "eval": []}
        with_prompts = CONSTRAINT_PROMPTS in st.formats
        for r in inputs.records():
            if unverified(r):
                counts.add("constrained_unverified")
                continue
            split = "eval" if r.id in eval_ids else "train"
            for ex in to_formats(r, st.system_prompt):
                for f in formats:
                    out[split][f].append(ex[f])
            row = to_constraint_prompt(r, st.system_prompt) if with_prompts else None
            if row is not None:
                prompts[split].append(row)
        files = []
        if with_prompts:  # no Parquet copy: each type's kwargs have keys of their own
            for split, items in prompts.items():
                name = CONSTRAINT_PROMPTS_FILE.format(split=split)
                atomic_write_jsonl(store.dir / name, items)
                files.append(name)
                counts.tallies[f"{split}_constraint_prompts"] = len(items)
        for split, by_fmt in out.items():
            for f, items in by_fmt.items():
                if f == "alpaca":
                    name = f"{split}.alpaca.json"
                    atomic_write_text(store.dir / name, json.dumps(items, ensure_ascii=False, indent=2) + "\n")
                else:
                    name = f"{split}.{f}.jsonl"
                    atomic_write_jsonl(store.dir / name, items)
                files.append(name)
                if PARQUET in st.formats and f not in CHAT_FORMATS:  # (nested trees: JSON only)
                    atomic_write_parquet(store.dir / f"{split}.{f}.{PARQUET}", items, f)
                    files.append(f"{split}.{f}.{PARQUET}")
                counts.tallies[f"{split}_examples"] = len(items)
        counts.add("train_instructions", len(ids) - len(eval_ids))  # (the pairs' are counted apart: write_pairs)
        counts.add("eval_instructions", len(eval_ids))
        return files

    def write_pairs(self, inputs, store, counts: Counts, prefix: str = "") -> list[str]:
        """train/eval.preference.jsonl; the eval split holds out whole source instructions (all the prompts
        made from one instruction go to the same side). Their instructions are counted as
        `{train,eval}_{prefix}instructions` (`pair_` next to SFT examples, which count theirs)."""
        def group(r):
            return str((r.extra.get("source") or {}).get("id", r.id))

        def pairs(r):
            return [r.extra[k] for k in ("pair", "pair_unconstrained") if k in r.extra]

        groups = sorted({group(r) for r in inputs.records() if pairs(r)})
        held_out = split_ids(groups, self.cfg.eval_fraction, self.ctx.cfg.seed)
        rows: dict[str, list] = {"train": [], "eval": []}
        for r in inputs.records():
            for p in pairs(r):
                prompt = list(r.extra["prompt"])
                if self.cfg.system_prompt and prompt[0]["role"] != "system":
                    prompt = [{"role": "system", "content": self.cfg.system_prompt}] + prompt
                side = {"id": r.id, "chosen_score": p["chosen_score"], "rejected_score": p["rejected_score"],
                        "margin": p["margin"], "ranked_by": p["ranked_by"], "source": r.extra.get("source"),
                        # one string (not a list: an all-empty list column has no type for `datasets`)
                        "constraints": ",".join(type_ids(r))}
                rows["eval" if group(r) in held_out else "train"].append(to_preference(prompt, *pair_texts(r, p), side))
        names = []
        for split, items in rows.items():
            name = PREFERENCE_FILE.format(split=split)
            atomic_write_jsonl(store.dir / name, items)
            names.append(name)
            counts.tallies[f"{split}_pairs"] = len(items)
        counts.add(f"train_{prefix}instructions", len(groups) - len(held_out))
        counts.add(f"eval_{prefix}instructions", len(held_out))
        return names
