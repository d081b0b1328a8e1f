"""Stage 1 (Self-Instruct): grow the instruction pool from seed + machine-generated demonstrations."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ...io.records import Record
from ...io.settings import setting
from ..options import InstructionFilters, Sampling, StageModel
from ..parsing import parse_instructions
from ..prompts import bootstrap_prompt
from ..registry import register_stage
from ..stage import RoundsStage


@dataclass
class BootstrapConfig(StageModel):
    num_instructions: int = setting(100, min=1, help="instructions to generate")
    prompt_format: str = setting("completion", choices=("completion", "chat"))
    num_seed_demos: int = setting(6, min=0, help="seed tasks shown per prompt")
    num_machine_demos: int = setting(2, min=0, help="generated instructions shown per prompt")
    requests_per_round: int = setting(16, min=1, max=65536, help="requests built and sent per round")
    max_rounds: int = setting(200, min=1)
    nearest_floor: float = setting(0.0, min=0.0, max=1.0,
                                   help="nearest-instruction provenance is exact whenever its score > this")
    overlap_depth: int = setting(16, min=1, max=1024,
                                 help="look-ahead: round r is built (its machine demos picked) once rounds "
                                      "<= r - depth are done (1: one round at a time)")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=1.0, top_p=1.0, max_tokens=256))
    filters: InstructionFilters = setting(factory=InstructionFilters)

    def check(self, err) -> None:
        if self.num_seed_demos + self.num_machine_demos < 1:
            err("num_seed_demos", "at least one demonstration is needed")


@register_stage
class Bootstrap(RoundsStage):
    name = "bootstrap"
    Config = BootstrapConfig
    template_version = "si-v1"
    writes = frozenset({"instruction", "provenance"})

    def make_prompt(self, rng: random.Random, visible: list[Record]) -> tuple[Any, dict[str, Any]]:
        st, seeds = self.cfg, self.ctx.seeds
        shown = rng.sample(seeds, min(st.num_seed_demos, len(seeds)))
        machine = rng.sample(visible, min(st.num_machine_demos, len(visible)))
        if len(machine) < st.num_machine_demos:  # early rounds: fill up with seed tasks
            ids = {s.id for s in shown}
            rest = [s for s in seeds if s.id not in ids]
            shown += rng.sample(rest, min(st.num_machine_demos - len(machine), len(rest)))
        demos = [(s.instruction, "seed", s.id) for s in shown] + [(m.instruction, "machine", m.id) for m in machine]
        rng.shuffle(demos)
        # one list of {id, source} in prompt order: never empty, so every shard has the same schema
        meta = {"prompt_demos": [{"id": i, "source": kind} for _, kind, i in demos]}
        return bootstrap_prompt([d for d, _, _ in demos], st.prompt_format), meta

    def parse(self, text: str, truncated: bool, meta: dict[str, Any]) -> list[tuple[Record | None, str]]:
        found = parse_instructions(text, truncated=truncated, completion=self.cfg.prompt_format == "completion")
        return [(Record(id="", instruction=t), "") for t in found]
