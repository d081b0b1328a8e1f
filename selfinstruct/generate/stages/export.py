"""Stage 4b: export fine-tuning data: chat `messages` JSONL, prompt-completion JSONL (TRL's
conversational prompt-completion: the prompt is masked in the loss) and Alpaca JSON, each with a
deterministic held-out eval split (by instruction, so no instruction is in both)."""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter

from ..context import Context
from ...io.jsonl import atomic_write_jsonl, atomic_write_text


def user_prompt(instruction: str, inp: str) -> str:
    return f"{instruction.strip()}\n\n{inp.strip()}" if inp.strip() else instruction.strip()


def split_ids(ids: list[str], fraction: float, seed: int) -> set[str]:
    """The eval ids: the ceil(fraction * n) ids with the smallest hash(seed, id)."""
    if fraction <= 0 or len(ids) < 2:
        return set()
    n = min(len(ids) - 1, max(1, math.ceil(fraction * len(ids))))
    order = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return set(order[:n])


def to_formats(row: dict, system: str | None):
    for inst in row["instances"]:
        prompt = user_prompt(row["instruction"], inst["input"])
        sys_msgs = [{"role": "system", "content": system}] if system else []
        yield {
            "messages": {"id": row["id"], "messages": sys_msgs + [{"role": "user", "content": prompt},
                                                                  {"role": "assistant", "content": inst["output"]}]},
            "prompt_completion": {"id": row["id"], "prompt": sys_msgs + [{"role": "user", "content": prompt}],
                                  "completion": [{"role": "assistant", "content": inst["output"]}]},
            "alpaca": {"instruction": row["instruction"], "input": inst["input"], "output": inst["output"]},
        }


def run(ctx: Context, store, inputs) -> None:
    st = ctx.cfg.export
    rows = list(inputs.rows())
    eval_ids = split_ids([r["id"] for r in rows], st.eval_fraction, ctx.cfg.seed)
    out = {split: {f: [] for f in st.formats} for split in ("train", "eval")}
    for r in rows:
        split = "eval" if r["id"] in eval_ids else "train"
        for ex in to_formats(r, st.system_prompt):
            for f in st.formats:
                out[split][f].append(ex[f])
    files, counts = [], Counter()
    for split, by_fmt in out.items():
        for f, items in by_fmt.items():
            if f == "alpaca":
                name = f"{split}.alpaca.json"
                atomic_write_text(store.dir / name, json.dumps(items, ensure_ascii=False, indent=2) + "\n")
            else:
                name = f"{split}.{f}.jsonl"
                atomic_write_jsonl(store.dir / name, items)
            files.append(name)
            counts[f"{split}_examples"] = len(items)
    counts["train_instructions"] = len(rows) - len(eval_ids)
    counts["eval_instructions"] = len(eval_ids)
    store.manifest["files"] = files
    store.counts.update(counts)
    store.finish()
