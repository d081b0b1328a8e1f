"""Stage 2: decide per instruction whether it is a classification task (few-shot, seed examples).
Unparseable answers keep the record (as non-classification) and record why."""
from __future__ import annotations

import random
from collections import Counter

from ..context import Context, derive_seed
from ..parsing import parse_classification
from ..prompts import classify_prompt
from ...backends import Request
from .common import run_batches


def pick_demos(ctx: Context, n: int):
    """A fixed, balanced set of seed demonstrations (the same prompt prefix for every request,
    which vLLM's prefix cache reuses)."""
    rng = random.Random(derive_seed(ctx.cfg.seed, "classify", "demos"))
    pos = [s for s in ctx.seeds if s.is_classification]
    neg = [s for s in ctx.seeds if not s.is_classification]
    k = min(n // 2, len(pos))
    demos = rng.sample(pos, k) + rng.sample(neg, min(n - k, len(neg)))
    rng.shuffle(demos)
    return demos


def run(ctx: Context, store, inputs) -> None:
    st = ctx.cfg.classify
    demos = pick_demos(ctx, st.num_demos)
    rows_in = list(inputs.rows())

    def make_requests(batch):
        return [Request.from_sampling(classify_prompt(demos, r["instruction"]), st.sampling,
                                      seed=derive_seed(ctx.cfg.seed, "classify", r["id"])) for r in batch]

    def process(batch, comps):
        counts = Counter()
        rows, rejects = [], []
        for r, c in zip(batch, comps):
            label = None if c.error else parse_classification(c.text)
            row = dict(r, is_classification=bool(label), classify_raw=c.text, classify_note="")
            if label is None:
                why = "request_failed" if c.error else "unparseable"
                row["classify_note"] = f"{why}; defaulted to is_classification=false"
                counts[f"note:{why}"] += 1
                rejects.append({"id": r["id"], "instruction": r["instruction"], "reason": why, "raw": c.text,
                                "error": c.error, "kept_as": "is_classification=false"})
            counts["classification" if label else "not_classification"] += 1
            rows.append(row)
        return rows, rejects, counts

    run_batches(ctx, store, "classify", rows_in, st.batch_size, process, make_requests)
