"""Answers to the grounded instructions, written with their source in context (`grounding.text`: the
chunk of the user's document), by the stage's model: usually a teacher bigger than the model to be
trained. One answer per instruction, its seed derived from the record id.

The example's input is the chunk for an open-book run (`grounded.book: open`: the exported prompt is
the text and the instruction) and empty for a closed-book one (the instruction alone: the model must
learn the answer). An empty answer, or one cut off at the token budget, is a reject with that reason."""
from __future__ import annotations

from dataclasses import dataclass

from ...backends.base import Completion, Request
from ...io.records import Instance, Record, Reject
from ...io.settings import setting
from ..options import Sampling, StageModel, derive_seed
from ..prompts import grounded_answer_prompt
from ..registry import register_stage
from ..stage import BatchStage, StageResult


@dataclass
class AnswerConfig(StageModel):
    keep_truncated: bool = setting(False, help="keep answers cut off at sampling.max_tokens (default: a reject)")
    batch_size: int = setting(64, min=1, help="instructions per shard")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=0.0, max_tokens=256))


@register_stage
class Answer(BatchStage):
    name = "answer"
    Config = AnswerConfig
    template_version = "answer-v1"  # prompts.grounded_answer_prompt
    reads = frozenset({"instruction", "grounding"})
    writes = frozenset({"instances"})
    uses_model = True
    order = 30

    def requests(self, batch: list[Record]) -> list[Request]:
        return [Request.from_sampling(grounded_answer_prompt(r.extra["grounding"]["text"], r.instruction),
                                      self.cfg.sampling, seed=derive_seed(self.ctx.cfg.seed, self.name, r.id))
                for r in batch]

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        for r, c in zip(batch, completions):
            text = c.text.strip()
            if not text:
                out.reject(Reject(r.id, "empty_answer", instruction=r.instruction, raw=c.text))
                continue
            if c.finish_reason == "length" and not self.cfg.keep_truncated:
                out.reject(Reject(r.id, "truncated", instruction=r.instruction, output=text,
                                  detail=f"cut off at {self.cfg.sampling.max_tokens} tokens"))
                continue
            g = r.extra["grounding"]
            r.instances = [Instance(g["text"].strip() if g.get("book") == "open" else "", text)]
            out.keep(r)
        return out
