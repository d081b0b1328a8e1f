"""Stage 4b: export fine-tuning data: chat `messages` JSONL, prompt-completion JSONL (TRL's
conversational prompt-completion: the prompt is masked in the loss) and Alpaca JSON, each with a
deterministic held-out eval split (by instruction, so no instruction is in both)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from ...io.formats import FORMATS, to_formats
from ...io.jsonl import atomic_write_jsonl, atomic_write_text
from ...io.records import Counts
from ...io.settings import setting
from ..registry import register_stage
from ..stage import SinkStage


@dataclass
class ExportConfig:
    eval_fraction: float = setting(0.1, min=0.0, max=1.0, help="share of instructions held out for eval")
    formats: list[str] = setting(factory=lambda: list(FORMATS), choices=FORMATS)
    system_prompt: str | None = setting(None, help="system message put before every example")

    def check(self, err) -> None:
        if self.eval_fraction >= 1.0:
            err("eval_fraction", "must be in [0, 1)")


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

    def write(self, inputs, store) -> tuple[list[str], Counts]:
        st = self.cfg
        # two passes over the input instead of holding it: the split needs every id first
        ids = [r.id for r in inputs.records()]
        eval_ids = split_ids(ids, st.eval_fraction, self.ctx.cfg.seed)
        out = {split: {f: [] for f in st.formats} for split in ("train", "eval")}
        for r in inputs.records():
            split = "eval" if r.id in eval_ids else "train"
            for ex in to_formats(r, st.system_prompt):
                for f in st.formats:
                    out[split][f].append(ex[f])
        files, counts = [], Counts()
        for split, by_fmt in out.items():
            for f, items in by_fmt.items():
                if f == "alpaca":
                    name = f"{split}.alpaca.json"
                    atomic_write_text(store.dir / name, json.dumps(items, ensure_ascii=False, indent=2) + "\n")
                else:
                    name = f"{split}.{f}.jsonl"
                    atomic_write_jsonl(store.dir / name, items)
                files.append(name)
                counts.tallies[f"{split}_examples"] = len(items)
        counts.add("train_instructions", len(ids) - len(eval_ids))
        counts.add("eval_instructions", len(eval_ids))
        return files, counts
