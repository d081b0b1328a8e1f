"""Faithfulness (no model): an answer written from a chunk of the user's documents must be supported by
that chunk. Checked by code (`documents/support.py`): the share of the answer's content words found in
the chunk (stems; stop words left out) must reach `min_words`, the share of its content bigrams
`min_bigrams`, and every number in it must be in the chunk. Each kept record carries its figures (`faithfulness`); a dropped one is a reject
`unsupported` (with the figures and the first missing words) or `no_content` (an answer with no content
word: nothing to check). `stats` counts them, `show RUN/faithfulness --reason unsupported` lists them.

What code cannot see (a supported-looking sentence that says the opposite) is the judge's: put `judge`
with `rubric: groundedness` after this stage and `select` (`min_score`) after it."""
from __future__ import annotations

from dataclasses import dataclass

from ...backends.base import Completion
from ...documents import support
from ...io.records import Record, Reject
from ...io.settings import setting
from ..registry import register_stage
from ..stage import BatchStage, StageResult


@dataclass
class FaithfulnessConfig:
    min_words: float = setting(0.7, min=0.0, max=1.0, help="least share of the answer's content words found in "
                                                           "its source chunk")
    min_bigrams: float = setting(0.0, min=0.0, max=1.0, help="least share of its content bigrams found there "
                                                             "(answers of a single content word pass)")
    batch_size: int = setting(1024, min=1, help="records per shard")


@register_stage
class Faithfulness(BatchStage):
    name = "faithfulness"
    Config = FaithfulnessConfig
    reads = frozenset({"instances", "grounding"})
    writes = frozenset({"faithfulness"})
    order = 35

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        for r in batch:
            answer = r.instances[0].output if r.instances else ""
            s = support(answer, r.extra["grounding"]["text"])
            figures = {"words": s.words, "bigrams": s.bigrams}
            if s.words is None:
                out.reject(Reject(r.id, "no_content", record=r, detail="the answer has no content word to check"))
            elif not s.passes(self.cfg.min_words, self.cfg.min_bigrams):
                out.reject(Reject(r.id, "unsupported", record=r, fields={"faithfulness": figures},
                                  detail=f"{s.words:.0%} of its content words and "
                                         f"{'-' if s.bigrams is None else f'{s.bigrams:.0%}'} of its content bigrams "
                                         f"are in the source; not there: {', '.join(s.missing)}"
                                         + (f" (numbers: {', '.join(s.numbers)})" if s.numbers else "")))
            else:
                r.extra["faithfulness"] = figures
                out.counts.add("supported")
                out.keep(r)
        return out
