"""Constraints for a share of the instructions (no model): one to `max_constraints` verifiable constraints
from the constraint library (`selfinstruct constraints` lists them) appended to the instruction, each in a
phrasing of its own, all drawn from a random generator seeded by the run's seed and the record's id (a
resumed or repeated run draws the same).

A constrained record's instruction becomes the constrained prompt, so every later stage and the export
see it; the instruction without them, the constraints (`{id, kwargs}`) and their description are kept
in its `constraints` field (`generate/constrained.py`). It keeps its first instance only: that
instance's input is the prompt's input, and its output, written for the prompt without the constraints,
is replaced by `verify`'s verified answer (an export never writes a constrained record's example that
`verify` did not check). Records outside the share, and classification tasks (unless
`classification`), pass through unchanged."""
from __future__ import annotations

from dataclasses import dataclass

from ...backends.base import Completion
from ...constraints import constraint_types
from ...io.records import Record
from ...io.settings import setting
from ..constrained import constrain_share
from ..registry import register_stage
from ..stage import BatchStage, StageResult


@dataclass
class ConstrainConfig:
    share: float = setting(1.0, min=0.0, max=1.0, help="share of the instructions given constraints (drawn per "
                                                       "record id)")
    max_constraints: int = setting(1, min=1, max=6, help="constraints per constrained prompt: 1 to this many, "
                                                         "compatible ones, drawn per record")
    types: list[str] | None = setting(None, help="the constraint type ids to draw from (`selfinstruct "
                                                 "constraints` lists them); null: every registered type")
    classification: bool = setting(False, help="also constrain classification tasks (their answer is a label, "
                                               "which most constraints do not fit)")
    batch_size: int = setting(1024, min=1, help="records per shard")

    def check(self, err) -> None:
        if self.types is not None:
            if not self.types:
                err("types", "name at least one constraint type, or null for all of them")
            known = constraint_types()
            for i, t in enumerate(self.types):
                if t not in known:
                    err(f"types[{i}]", f"unknown constraint type {t!r} (`selfinstruct constraints` lists them)")


@register_stage
class Constrain(BatchStage):
    name = "constrain"
    Config = ConstrainConfig
    template_version = "constrain-v1"  # the constraint library's phrasings: bump when they change
    reads = frozenset({"instruction"})
    writes = frozenset({"instruction", "constraints"})
    order = 42

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out, st = StageResult(), self.cfg
        for r in batch:
            if r.is_classification and not st.classification:
                out.counts.add("unconstrained_classification")
            elif constrain_share(r, self.ctx.cfg.seed, self.name, st.share, st.max_constraints, st.types):
                out.counts.add("constrained")
                for c in r.extra["constraints"]["items"]:
                    out.counts.add(f"type:{c['id']}")
                if r.instances and len(r.instances) > 1:
                    out.counts.add("instances_left_out", len(r.instances) - 1)
                    r.instances = r.instances[:1]
            else:
                out.counts.add("unconstrained")
            out.keep(r)
        return out
