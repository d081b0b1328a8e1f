"""Stage 3: generate input/output instances: input-first for ordinary tasks, output-first (class label,
then input) for classification tasks, so that the labels are not skewed to one class."""
from __future__ import annotations

import random
from dataclasses import dataclass

from ...backends.base import Completion, Request
from ...io.records import Instance, Record, Reject
from ...io.settings import setting
from ..options import Sampling, StageModel
from ..options import derive_seed
from ..parsing import parse_instances_input_first, parse_instances_output_first
from ..prompts import instances_prompt
from ..registry import register_stage
from ..stage import BatchStage, StageResult


@dataclass
class InstancesConfig(StageModel):
    num_demos: int = setting(3, min=0, help="seed tasks with examples shown per prompt")
    max_instances: int = setting(5, min=1, help="instances kept per task")
    batch_size: int = setting(256, min=1, help="records per shard")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=0.0, max_tokens=300))


@register_stage
class Instances(BatchStage):
    name = "instances"
    Config = InstancesConfig
    template_version = "si-v1"
    reads = frozenset({"instruction", "is_classification"})
    writes = frozenset({"instances", "raw"})
    uses_model = True
    order = 30

    def __init__(self, ctx, cfg):
        super().__init__(ctx, cfg)
        with_examples = [s for s in ctx.seeds if s.instances]
        self.cls_pool = [s for s in with_examples if s.is_classification] or with_examples
        self.gen_pool = [s for s in with_examples if not s.is_classification] or with_examples

    def requests(self, batch: list[Record]) -> list[Request]:
        reqs, seed = [], self.ctx.cfg.seed
        for r in batch:
            rng = random.Random(derive_seed(seed, "instances", "demos", r.id))
            cls = bool(r.is_classification)
            pool = self.cls_pool if cls else self.gen_pool
            demos = rng.sample(pool, min(self.cfg.num_demos, len(pool)))
            reqs.append(Request.from_sampling(instances_prompt(demos, r.instruction, output_first=cls),
                                              self.cfg.sampling, seed=derive_seed(seed, "instances", r.id)))
        return reqs

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out, limit = StageResult(), self.cfg.max_instances
        for r, c in zip(batch, completions):
            parse = parse_instances_output_first if r.is_classification else parse_instances_input_first
            found, err = parse(c.text, truncated=c.finish_reason == "length")
            if err:
                out.reject(Reject(r.id, "unparseable", instruction=r.instruction, detail=err, raw=c.text))
                continue
            out.counts.add("instances", min(len(found), limit))
            r.instances = [Instance(i.input, i.output) for i in found[:limit]]
            r.raw["instances"] = c.text
            out.keep(r)
        return out
