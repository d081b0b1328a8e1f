"""Stage 3: generate input/output instances: input-first for ordinary tasks, output-first (class label,
then input) for classification tasks, so that the labels are not skewed to one class."""
from __future__ import annotations

import random
from collections import Counter

from ..context import Context, derive_seed
from ..parsing import parse_instances_input_first, parse_instances_output_first
from ..prompts import instances_prompt
from ...backends import Request
from .common import run_batches


def run(ctx: Context, store, inputs) -> None:
    st = ctx.cfg.instances
    cls_pool = [s for s in ctx.seeds if s.is_classification and s.instances] or [s for s in ctx.seeds if s.instances]
    gen_pool = [s for s in ctx.seeds if not s.is_classification and s.instances] or [s for s in ctx.seeds if s.instances]
    rows_in = list(inputs.rows())

    def make_requests(batch):
        reqs = []
        for r in batch:
            rng = random.Random(derive_seed(ctx.cfg.seed, "instances", "demos", r["id"]))
            cls = bool(r.get("is_classification"))
            pool = cls_pool if cls else gen_pool
            demos = rng.sample(pool, min(st.num_demos, len(pool)))
            reqs.append(Request.from_sampling(instances_prompt(demos, r["instruction"], output_first=cls),
                                              st.sampling, seed=derive_seed(ctx.cfg.seed, "instances", r["id"])))
        return reqs

    def process(batch, comps):
        counts = Counter()
        rows, rejects = [], []
        for r, c in zip(batch, comps):
            if c.error:
                rejects.append({"id": r["id"], "instruction": r["instruction"], "reason": "request_failed",
                                "error": c.error, "raw": c.text})
                counts["reject:request_failed"] += 1
                continue
            parse = parse_instances_output_first if r.get("is_classification") else parse_instances_input_first
            found, err = parse(c.text, truncated=c.finish_reason == "length")
            if err:
                rejects.append({"id": r["id"], "instruction": r["instruction"], "reason": "unparseable",
                                "detail": err, "raw": c.text})
                counts["reject:unparseable"] += 1
                continue
            counts["instances"] += min(len(found), st.max_instances)
            rows.append(dict(r, instances=[{"input": i.input, "output": i.output} for i in found[: st.max_instances]],
                             instances_raw=c.text))
        return rows, rejects, counts

    run_batches(ctx, store, "instances", rows_in, st.batch_size, process, make_requests)
