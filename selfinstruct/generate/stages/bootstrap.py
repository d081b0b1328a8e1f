"""Stage 1 (Self-Instruct): grow the instruction pool from seed + machine-generated demonstrations."""
from __future__ import annotations

from ..context import Context
from ..parsing import parse_instructions
from ..prompts import bootstrap_prompt
from .common import run_rounds


def run(ctx: Context, store, _inputs=None) -> None:
    st = ctx.cfg.bootstrap
    completion = st.prompt_format == "completion"

    def make_prompt(rng, kept):
        seeds = rng.sample(ctx.seeds, min(st.num_seed_demos, len(ctx.seeds)))
        machine = rng.sample(kept, min(st.num_machine_demos, len(kept)))
        if len(machine) < st.num_machine_demos:  # early rounds: fill up with seed tasks
            shown = {s.id for s in seeds}
            rest = [s for s in ctx.seeds if s.id not in shown]
            seeds += rng.sample(rest, min(st.num_machine_demos - len(machine), len(rest)))
        demos = [(s.instruction, "seed", s.id) for s in seeds] + [(m["instruction"], "machine", m["id"]) for m in machine]
        rng.shuffle(demos)
        # one list of {id, source} in prompt order: never empty, so every shard has the same schema
        meta = {"prompt_demos": [{"id": i, "source": kind} for _, kind, i in demos]}
        return bootstrap_prompt([d for d, _, _ in demos], st.prompt_format), meta

    def parse(text, truncated, meta):
        return [({"instruction": t}, "") for t in parse_instructions(text, truncated=truncated, completion=completion)]

    run_rounds(ctx, store, "bootstrap", st, make_prompt, parse)
