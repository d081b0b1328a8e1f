"""Instructions written from the user's documents: for every chunk (the `documents` stage), `per_chunk`
instructions, each of a task type drawn from the configured mix (question answering, summary,
extraction, rewriting for an audience, reasoning over the text, comparison: prompts.GROUNDED_TASKS) with a
seed derived from the chunk id and the slot, so a resumed run asks the same requests.

`book` sets what a user of the data will see: `closed` (the instruction alone: the model learns the
knowledge; the prompt asks for an instruction that names its subject, and one that says "the passage"
is dropped) or `open` (the chunk is given with the instruction: the model learns to read a given text;
`answer` puts the chunk in the example's input). Instructions pass the usual filters and the exact
ROUGE-L index over the whole run (rebuilt from the committed shards on resume). Each kept instruction is
a record of its own, with its source in `grounding` (the chunk's text, path, span, headings, task)."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ...backends.base import Completion, Request
from ...dedup.index import RougeIndex
from ...io.records import Record, Reject
from ...io.settings import setting
from ..filters import instruction_reject_reason
from ..options import InstructionFilters, Sampling, StageModel, derive_seed
from ..prompts import GROUNDED_TASKS, grounded_instruction_prompt
from ..registry import register_stage
from ..stage import BatchStage, StageResult

BOOKS = ("closed", "open")
# a closed-book instruction must not lean on a text its reader will not have
REFERS_TO_SOURCE = re.compile(r"\b(the|this|that|above|given|following) (passage|text|excerpt|document|paragraph|"
                              r"section|source)\b", re.IGNORECASE)
LEAD = re.compile(r"^\s*(?:[-*\d.)]+\s*)?(?:\*\*)?(?:instruction|question|task|request)\s*\d*\s*[:.-]\s*(?:\*\*)?\s*",
                  re.IGNORECASE)


@dataclass
class GroundedConfig(StageModel):
    per_chunk: int = setting(3, min=1, max=64, help="instructions asked for per chunk")
    tasks: dict[str, float] = setting(factory=lambda: {t: 1.0 for t in GROUNDED_TASKS},
                                      help=f"task types and their weights in the mix ({', '.join(GROUNDED_TASKS)})")
    book: str = setting("closed", choices=BOOKS,
                        help="closed: the exported prompt is the instruction alone (teaches the knowledge); open: "
                             "the chunk and the instruction (teaches reading a given text)")
    filters: InstructionFilters = setting(factory=lambda: InstructionFilters(blocked_keywords=[], blocked_prefixes=[]))
    batch_size: int = setting(16, min=1, help="chunks per shard")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=0.7, top_p=0.95, max_tokens=96))

    def check(self, err) -> None:
        for t, w in self.tasks.items():
            if t not in GROUNDED_TASKS:
                err(f"tasks.{t}", f"unknown task type (one of {', '.join(GROUNDED_TASKS)})")
            elif not isinstance(w, (int, float)) or w < 0:
                err(f"tasks.{t}", "a weight must be a number >= 0")
        if not any(w > 0 for w in self.tasks.values() if isinstance(w, (int, float))):
            err("tasks", "give at least one task type a weight above 0")


def first_line(text: str) -> str:
    """The instruction in a model's reply: its first non-empty line, without a label or quotes."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    return LEAD.sub("", line).strip().strip('"“”').strip()


@register_stage
class Grounded(BatchStage):
    name = "grounded"
    Config = GroundedConfig
    template_version = "grounded-v1"  # prompts.grounded_instruction_prompt and GROUNDED_TASKS
    reads = frozenset({"chunk"})
    writes = frozenset({"instruction", "grounding"})
    removes = frozenset({"chunk"})
    uses_model = True
    order = 20

    def begin(self, store, inputs) -> None:
        # the run's instructions so far: a resumed run checks new ones against the same pool
        self.index = RougeIndex(threshold=self.cfg.filters.rouge_threshold)
        for r in store.records():
            self.index.add(r.instruction, r.id)

    def slots(self, r: Record) -> list[str]:
        """The task type of each of the chunk's instructions (drawn per chunk id: the same on resume)."""
        names = [t for t, w in self.cfg.tasks.items() if w > 0]
        weights = [self.cfg.tasks[t] for t in names]
        rng = random.Random(derive_seed(self.ctx.cfg.seed, self.name, r.id))
        return rng.choices(names, weights, k=self.cfg.per_chunk)

    def requests(self, batch: list[Record]) -> list[Request]:
        out = []
        for r in batch:
            c = r.extra["chunk"]
            for k, task in enumerate(self.slots(r)):
                out.append(Request.from_sampling(
                    grounded_instruction_prompt(c["text"], c["headings"], task, self.cfg.book), self.cfg.sampling,
                    seed=derive_seed(self.ctx.cfg.seed, self.name, r.id, k)))
        return out

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        it = iter(completions)
        out.counts.add("inputs", len(batch))  # chunks read: this stage makes several records of one
        for r in batch:
            c = r.extra["chunk"]
            for k, task in enumerate(self.slots(r)):
                comp = next(it)
                rid = f"{r.id}-{k}"
                text = first_line(comp.text)
                reason = instruction_reject_reason(text, self.cfg.filters)
                if reason is None and self.cfg.book == "closed" and REFERS_TO_SOURCE.search(text):
                    reason = "refers_to_source"
                match = None
                if reason is None:
                    match = self.index.check_add(text, rid)
                    reason = "rouge_similar" if match.duplicate else None
                if reason is not None:
                    out.reject(Reject(rid, reason, instruction=text, raw=comp.text,
                                      fields={"task": task, **({"nearest": match.nearest, "score": round(match.score, 4)}
                                                               if match is not None and match.duplicate else {})}))
                    continue
                out.counts.add(f"task:{task}")
                out.keep(Record(id=rid, instruction=text, extra={"grounding": {
                    **{k2: c[k2] for k2 in ("path", "sha256", "span", "headings")}, "chunk": r.id, "task": task,
                    "book": self.cfg.book, "text": c["text"]}}))
        return out
