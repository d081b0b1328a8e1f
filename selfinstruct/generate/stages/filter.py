"""Stage 4a: drop bad instances (empty or over-long output, input equal to output, output repeating the
instruction, duplicates) and records left with none; count every reason."""
from __future__ import annotations

import re
from collections import Counter

from ..context import Context
from ..filters import instance_reject_reason
from .common import run_batches


def _key(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def run(ctx: Context, store, inputs) -> None:
    st = ctx.cfg.filter
    rows_in = list(inputs.rows())

    def process(batch, _comps):
        counts = Counter()
        rows, rejects = [], []
        for r in batch:
            kept, seen_pairs, seen_inputs = [], set(), set()
            for inst in r.get("instances", []):
                inp, out = inst.get("input", ""), inst.get("output", "")
                reason = instance_reject_reason(r["instruction"], inp, out, st)
                if reason is None:
                    pair = (_key(inp), _key(out))
                    if pair in seen_pairs or (inp.strip() and not r.get("is_classification") and pair[0] in seen_inputs):
                        reason = "duplicate_instance"
                    seen_pairs.add(pair)
                    seen_inputs.add(pair[0])
                if reason is None and len(kept) >= st.max_instances:
                    reason = "too_many_instances"
                if reason:
                    counts[f"instance:{reason}"] += 1
                    rejects.append({"id": r["id"], "instruction": r["instruction"], "input": inp, "output": out,
                                    "reason": reason})
                else:
                    kept.append({"input": inp.strip(), "output": out.strip()})
            if not kept:
                counts["reject:no_instances_left"] += 1
                rejects.append({"id": r["id"], "instruction": r["instruction"], "reason": "no_instances_left"})
                continue
            counts["instances"] += len(kept)
            row = {k: v for k, v in r.items() if k not in ("instances_raw", "classify_raw")}
            row["instances"] = kept
            rows.append(row)
        return rows, rejects, counts

    run_batches(ctx, store, "filter", rows_in, 1024, process)
