"""Stage 4a: drop bad instances (empty or over-long output, input equal to output, output repeating the
instruction, duplicates) and records left with none; count every reason."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ...backends.base import Completion
from ...io.records import Instance, Record, Reject
from ...io.settings import setting
from ..filters import instance_reject_reason
from ..registry import register_stage
from ..stage import BatchStage, StageResult


@dataclass
class FilterConfig:
    max_output_words: int = setting(400, min=1)
    max_input_words: int = setting(400, min=0)
    min_output_chars: int = setting(1, min=0)
    max_instances: int = setting(5, min=1, help="instances kept per task")


def _key(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


@register_stage
class Filter(BatchStage):
    name = "filter"
    Config = FilterConfig
    reads = frozenset({"instruction", "instances"})
    removes = frozenset({"raw"})  # the raw model text stays in the earlier stages' shards
    order = 40
    batch_size = 1024  # no model: the batch is only the shard size

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out, st = StageResult(), self.cfg
        for r in batch:
            kept: list[Instance] = []
            seen_pairs, seen_inputs = set(), set()
            for inst in r.instances or []:
                inp, res = inst.input, inst.output
                reason = instance_reject_reason(r.instruction, inp, res, st)
                if reason is None:
                    pair = (_key(inp), _key(res))
                    if pair in seen_pairs or (inp.strip() and not r.is_classification and pair[0] in seen_inputs):
                        reason = "duplicate_instance"
                    seen_pairs.add(pair)
                    seen_inputs.add(pair[0])
                if reason is None and len(kept) >= st.max_instances:
                    reason = "too_many_instances"
                if reason:
                    out.reject(Reject(r.id, reason, level="instance", instruction=r.instruction, input=inp, output=res))
                else:
                    kept.append(Instance(inp.strip(), res.strip()))
            if not kept:
                out.reject(Reject(r.id, "no_instances_left", instruction=r.instruction))
                continue
            out.counts.add("instances", len(kept))
            r.raw.clear()
            r.instances = kept
            out.keep(r)
        return out
