"""Alpaca single-pass variant: each prompt yields up to N (instruction, input, output) triples, which
go through the same instruction filters, then straight to the instance filter and export."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ...io.records import Instance, Record
from ...io.settings import setting
from ..options import InstructionFilters, Sampling, StageModel
from ..parsing import parse_alpaca
from ..prompts import alpaca_prompt
from ..registry import register_stage
from ..stage import RoundsStage


@dataclass
class AlpacaConfig(StageModel):
    """Alpaca single-pass generation: each prompt yields up to `tasks_per_prompt` (instruction, input, output)."""
    num_instructions: int = setting(100, min=1, help="instructions to generate")
    num_demos: int = setting(3, min=1, help="seed tasks shown per prompt")
    tasks_per_prompt: int = setting(20, min=1)
    requests_per_round: int = setting(16, min=1, max=65536, help="requests built and sent per round")
    max_rounds: int = setting(200, min=1)
    nearest_floor: float = setting(0.0, min=0.0, max=1.0)
    overlap_depth: int = setting(16, min=1, max=1024)
    prompt_format: str = setting("completion", choices=("completion", "chat"))
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=1.0, top_p=1.0, max_tokens=1024))
    filters: InstructionFilters = setting(factory=InstructionFilters)


@register_stage
class Alpaca(RoundsStage):
    name = "alpaca"
    Config = AlpacaConfig
    template_version = "alpaca-v1"
    writes = frozenset({"instruction", "instances", "provenance"})

    def make_prompt(self, rng: random.Random, visible: list[Record]) -> tuple[Any, dict[str, Any]]:
        st = self.cfg
        with_instances = [s for s in self.ctx.seeds if s.instances] or self.ctx.seeds
        demos = rng.sample(with_instances, min(st.num_demos, len(with_instances)))
        return (alpaca_prompt(demos, st.tasks_per_prompt, st.prompt_format),
                {"prompt_demos": [{"id": d.id, "source": "seed"} for d in demos]})

    def parse(self, text: str, truncated: bool, meta: dict[str, Any]) -> list[tuple[Record | None, str]]:
        st = self.cfg
        first = st.num_demos + 1 if st.prompt_format == "completion" else 1
        if st.prompt_format == "chat":
            text = text.split("Instruction:", 1)[1] if "Instruction:" in text else ""
        out: list[tuple[Record | None, str]] = []
        for task, reason in parse_alpaca(text, first, truncated)[: st.tasks_per_prompt]:
            if task is None:
                out.append((None, reason))
            else:
                out.append((Record(id="", instruction=task.instruction,
                                   instances=[Instance(task.input, task.output)]), ""))
        return out
