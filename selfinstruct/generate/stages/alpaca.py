"""Alpaca single-pass variant: each prompt yields up to N (instruction, input, output) triples, which
go through the same instruction filters, then straight to the instance filter and export."""
from __future__ import annotations

from ..context import Context
from ..parsing import parse_alpaca
from ..prompts import alpaca_prompt
from .common import run_rounds


def run(ctx: Context, store, _inputs=None) -> None:
    st = ctx.cfg.alpaca
    with_instances = [s for s in ctx.seeds if s.instances] or ctx.seeds

    def make_prompt(rng, kept):
        demos = rng.sample(with_instances, min(st.num_demos, len(with_instances)))
        return alpaca_prompt(demos, st.tasks_per_prompt, st.prompt_format), {"prompt_demos": [{"id": d.id, "source": "seed"} for d in demos]}

    def parse(text, truncated, meta):
        first = st.num_demos + 1 if st.prompt_format == "completion" else 1
        if st.prompt_format == "chat":
            text = text.split("Instruction:", 1)[1] if "Instruction:" in text else ""
        out = []
        for task, reason in parse_alpaca(text, first, truncated)[: st.tasks_per_prompt]:
            if task is None:
                out.append((None, reason))
            else:
                out.append(({"instruction": task.instruction,
                             "instances": [{"input": task.input, "output": task.output}]}, ""))
        return out

    run_rounds(ctx, store, "alpaca", st, make_prompt, parse)
