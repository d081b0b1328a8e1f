"""Training mixtures: several sources with weights (`finetune.data` in pipelines/finetune.yaml; `dpo.data`
for preference runs). An instruction source (`run:`, a run or export dir or one file) keeps its
completion-only loss; a text source (`text:`, a folder, glob or file of documents) is raw text cut into
chunks of at most `max_length` tokens and trained with the plain language-modelling loss on every token
(continued pre-training), which is how a model learns a domain's text without being taught to answer.

The mixture is drawn, not concatenated: each of its `size` examples comes from source i with
probability weight_i / sum(weights) (a seeded draw), and within a source the rows come in a seeded
shuffled order, reshuffled each time it runs out (a small source with a big weight is repeated; a big
one with a small weight is sampled). Each source keeps its own held-out split: an instruction source its
eval split, a text source `text_eval_share` of its chunks (by a hash of the chunk, never drawn for
training). What was drawn, with the seed and each source's count, is written to OUT/mixture.json."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..documents import Unreadable, chunk_document, find_documents, read_document
from ..io.errors import UserError
from ..io.hashing import in_share
from ..io.settings import Err, setting

MIXTURE_FILE = "mixture.json"


@dataclass
class MixtureSource:
    run: str | None = setting(None, help="instruction data: a run dir, export dir or one file (completion-only loss)")
    text: str | None = setting(None, help="raw text: a folder, glob or file of documents (.txt .md .html .pdf), "
                                          "trained with the language-modelling loss on every token")
    weight: float = setting(1.0, min=0, min_exclusive=True, help="its share of the mixture: weight / sum of weights")
    name: str | None = setting(None, help="its name in mixture.json and the eval losses (default: from its path)")

    def check(self, err: Err) -> None:
        if (self.run is None) == (self.text is None):
            err("run", "give a source exactly one of run: (instruction data) or text: (raw documents)")

    @property
    def path(self) -> str:
        return str(self.run if self.run is not None else self.text)

    @property
    def kind(self) -> str:
        return "instructions" if self.run is not None else "text"


@dataclass
class Part:
    """One source, loaded: its rows ({"id", "prompt", "completion"} or {"id", "text"}) per split."""
    name: str
    source: MixtureSource
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def source_names(sources: list[MixtureSource]) -> list[str]:
    names, seen = [], set()
    for i, s in enumerate(sources):
        base = s.name or Path(s.path.rstrip("/")).name.split("*")[0] or f"source{i}"
        name = base if base not in seen else f"{base}-{i}"
        seen.add(name)
        names.append(name)
    return names


def text_rows(pattern: str, count: Callable[[str], int], max_tokens: int, eval_share: float
              ) -> tuple[list[dict], list[dict], list[str]]:
    """A text source's chunks as rows (train, eval) and the files read; an unreadable file is named in
    the error (training on part of a user's corpus without saying so is worse than stopping)."""
    root, files = find_documents(pattern)
    if not files:
        raise UserError("no documents found for a text: source (.txt, .md, .html, .htm, .pdf)", path=pattern)
    train, ev = [], []
    for f in files:
        try:
            doc = read_document(f)
        except Unreadable as e:
            raise UserError(f"cannot train on it: {e.detail} (take it out of the folder)", path=f) from None
        rel = str(f.relative_to(root)) if f.is_relative_to(root) else f.name
        for c in chunk_document(doc, count, max_tokens):
            text = doc.text[c.start:c.end].strip()
            if text:
                row = {"id": f"{rel}#{c.start}", "text": text}
                (ev if in_share(row["id"], eval_share) else train).append(row)
    return train, ev, [str(f) for f in files]


def load_parts(sources: list[MixtureSource], count: Callable[[str], int], max_tokens: int, eval_share: float,
               no_eval: bool = False) -> list[Part]:
    from .data import load_examples, resolve_data
    parts = []
    for name, s in zip(source_names(sources), sources):
        if s.run is not None:
            files = resolve_data(Path(s.run).expanduser(), no_eval=no_eval)
            part = Part(name, s, load_examples(files.train),
                        load_examples(files.eval) if files.eval is not None else [], [str(files.train)])
        else:
            train, ev, read = text_rows(s.text, count, max_tokens, 0.0 if no_eval else eval_share)
            part = Part(name, s, train, ev, read)
        if not part.train:
            raise UserError(f"mixture source {name!r} has no training rows", path=s.path)
        parts.append(part)
    return parts


def load_pair_parts(sources: list[MixtureSource], no_eval: bool = False) -> list[Part]:
    """Preference sources (`dpo.data`): each a preference run, export dir or pairs file."""
    from .pairs import load_pairs, resolve_pairs
    parts = []
    for name, s in zip(source_names(sources), sources):
        if s.run is None:
            raise UserError(f"dpo mixes preference runs: source {name!r} is text, which has no pairs", path=s.text)
        files = resolve_pairs(Path(s.run).expanduser(), no_eval=no_eval)
        part = Part(name, s, load_pairs(files.train), load_pairs(files.eval) if files.eval is not None else [],
                    [str(files.train)])
        if not part.train:
            raise UserError(f"mixture source {name!r} has no pairs", path=files.train)
        parts.append(part)
    return parts


def check_one_kind(data: Any, mixture: list[MixtureSource] | None, section: str) -> None:
    """-d DATA or a mixture in the config: exactly one of them."""
    if (data is None) == (not mixture):
        raise UserError(f"give the data as -d DATA or as a mixture (`{section}.data` in the config), not "
                        + ("both" if data is not None else "neither"))


def draw(sizes: list[int], weights: list[float], n: int, seed: int) -> list[tuple[int, int]]:
    """n (source, row) picks: the source by weight, the row the next of that source's shuffled order (the
    first k picks of a draw of n are the draw of k)."""
    # one generator for the sources, one per source for its orders: a bigger draw begins with the smaller one
    rngs = [random.Random(f"{seed}:{k}") for k in range(len(sizes))]
    orders: list[list[int]] = [[] for _ in sizes]
    picks = []
    for src in random.Random(seed).choices(range(len(sizes)), weights=weights, k=n):
        if not orders[src]:
            orders[src] = rngs[src].sample(range(sizes[src]), sizes[src])
        picks.append((src, orders[src].pop()))
    return picks


def mix(parts: list[Part], size: int | None, seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The drawn training rows (each with its source's name) and the record of the draw."""
    n = size if size is not None else sum(len(p.train) for p in parts)
    total = sum(p.source.weight for p in parts)
    picks = draw([len(p.train) for p in parts], [p.source.weight for p in parts], n, seed)
    rows = [dict(parts[s].train[i], source=parts[s].name) for s, i in picks]
    drawn = [0] * len(parts)
    for s, _ in picks:
        drawn[s] += 1
    record = {"seed": seed, "size": n, "sources": [
        {"name": p.name, "kind": p.source.kind, "path": p.source.path, "weight": p.source.weight,
         "share": round(p.source.weight / total, 4), "drawn": drawn[k], "drawn_share": round(drawn[k] / n, 4),
         "available": len(p.train), "distinct": len({i for s, i in picks if s == k}), "eval": len(p.eval),
         "files": p.files} for k, p in enumerate(parts)]}
    return rows, record


def tokenize(tok, row: dict[str, Any]) -> dict[str, list[int]]:
    """input_ids and completion_mask (1: in the loss): a text row whole (+ EOS), an instruction row's
    completion only (the prompt rendered with the chat template is masked), a multi-turn row's every
    assistant turn."""
    from .data import conversation_ids, prompt_completion_ids
    if "text" in row:
        ids = tok(row["text"], add_special_tokens=False)["input_ids"]
        if tok.eos_token_id is not None:
            ids = ids + [tok.eos_token_id]
        return {"input_ids": ids, "completion_mask": [1] * len(ids)}
    if is_multi_turn(row):  # every assistant turn is trained, not only the last
        ids, mask = conversation_ids(tok, row["prompt"] + row["completion"])
        return {"input_ids": ids, "completion_mask": mask}
    ids, n = prompt_completion_ids(tok, row["prompt"], row["completion"])
    return {"input_ids": ids, "completion_mask": [0] * n + [1] * (len(ids) - n)}


def is_multi_turn(row: dict[str, Any]) -> bool:
    return any(m["role"] == "assistant" for m in row.get("prompt") or [])
