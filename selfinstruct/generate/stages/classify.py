"""Stage 2: decide per instruction whether it is a classification task (few-shot, seed examples).
Unparseable answers keep the record (as non-classification) and record why."""
from __future__ import annotations

import random
from dataclasses import dataclass

from ...backends.base import Completion, Request
from ...io.records import Record, Reject
from ...io.settings import setting
from ..options import Sampling, StageModel
from ..options import derive_seed
from ..parsing import parse_classification
from ..prompts import classify_prompt
from ..registry import register_stage
from ..stage import BatchStage, StageResult


@dataclass
class ClassifyConfig(StageModel):
    num_demos: int = setting(12, min=0, help="seed tasks shown (half classification, half not)")
    batch_size: int = setting(256, min=1, help="records per shard")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=0.0, max_tokens=4))


@register_stage
class Classify(BatchStage):
    name = "classify"
    Config = ClassifyConfig
    template_version = "si-v1"
    reads = frozenset({"instruction"})
    writes = frozenset({"is_classification", "raw"})
    uses_model = True
    order = 20

    def __init__(self, ctx, cfg):
        super().__init__(ctx, cfg)
        self.demos = self.pick_demos(cfg.num_demos)

    def pick_demos(self, n: int):
        """A fixed, balanced set of seed demonstrations (the same prompt prefix for every request,
        which vLLM's prefix cache reuses)."""
        seeds = self.ctx.seeds
        rng = random.Random(derive_seed(self.ctx.cfg.seed, "classify", "demos"))
        pos = [s for s in seeds if s.is_classification]
        neg = [s for s in seeds if not s.is_classification]
        k = min(n // 2, len(pos))
        demos = rng.sample(pos, k) + rng.sample(neg, min(n - k, len(neg)))
        rng.shuffle(demos)
        return demos

    def requests(self, batch: list[Record]) -> list[Request]:
        return [Request.from_sampling(classify_prompt(self.demos, r.instruction), self.cfg.sampling,
                                      seed=derive_seed(self.ctx.cfg.seed, "classify", r.id)) for r in batch]

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        for r, c in zip(batch, completions):
            # failed requests never get here (the executor stops before the batch): only an answer
            # that is neither yes nor no gets the default
            label = parse_classification(c.text)
            r.is_classification = bool(label)
            r.raw["classify"] = c.text
            r.notes["classify"] = ""
            if label is None:
                r.notes["classify"] = "unparseable; defaulted to is_classification=false"
                out.reject(Reject(r.id, "unparseable", level="note", instruction=r.instruction, raw=c.text,
                                  error=c.error, kept_as="is_classification=false"))
            out.counts.add("classification" if label else "not_classification")
            out.keep(r)
        return out
