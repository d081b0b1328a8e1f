"""The first stage of a preference run: K answers from a policy model (usually the one `selfinstruct
finetune` made) to every prompt of the *train* split of an instruction-tuning run's export, so that the
SFT run's held-out (eval) instructions are never trained on.

A source stage: it reads another run (`source`), not the seed tasks; the hash of the file it reads keys
its stage hash (`input_digest`), so a re-exported source is noticed. One record per prompt, its K
answers as K instances (input empty: the prompt already holds the task's input), so the `judge` stage
scores every answer unchanged and `pairs` ranks them. Each request's seed derives from the global seed,
the record id and the sample index: a resumed run asks exactly the same requests.

With `constraints` > 0 a share of the prompts (drawn per record id) get verifiable constraints appended
from the constraint library (`selfinstruct/constraints/`, disjoint from what the evaluation suites test),
as the `constrain` stage appends them (`generate/constrained.py`: the same record field); `pairs` ranks
their answers by the checkers: exact labels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...backends.base import Completion, Request
from ...constraints import constraint_types
from ...io.errors import UserError
from ...io.records import Instance, Record
from ...io.settings import setting
from ...io.hashing import stable_hash
from ...train.data import load_examples, resolve_data
from ..constrained import constrain_share
from ..options import Sampling, StageModel, derive_seed
from ..registry import register_stage
from ..stage import BatchStage, SourceRecords, StageResult


@dataclass
class ResponsesConfig(StageModel):
    source: str | None = setting(None, help="the instruction-tuning run whose export's train split is answered "
                                            "(a run dir, its export dir, or one train.* file)")
    samples: int = setting(4, min=2, max=64, help="answers per prompt (K)")
    constraints: float = setting(0.0, min=0.0, max=1.0,
                                 help="share of prompts given verifiable constraints (the constraint library, "
                                      "disjoint from the evaluation suites'); their answers are ranked by the checkers")
    max_constraints: int = setting(1, min=1, max=6, help="constraints per constrained prompt (1 to this many)")
    constraint_types: list[str] | None = setting(None, help="the constraint type ids to draw from; null: all")
    limit: int | None = setting(None, min=1, help="only the first N prompts of the train split")
    batch_size: int = setting(32, min=1, help="prompts per shard")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=0.8, top_p=0.95, max_tokens=256))

    def check(self, err) -> None:
        # (a missing source is reported when a run starts: every config has this section, used or not)
        if self.source is not None and not Path(self.source).expanduser().exists():
            err("source", f"not found: {self.source}")
        if self.sampling.temperature == 0:
            err("sampling.temperature", "K greedy answers are all the same: sample (temperature > 0)")
        known = constraint_types()
        for i, t in enumerate(self.constraint_types or []):
            if t not in known:
                err(f"constraint_types[{i}]", f"unknown constraint type {t!r} (`selfinstruct constraints` lists them)")


def source_file(cfg: ResponsesConfig) -> Path:
    """The train split file of the source run."""
    if cfg.source is None:
        raise UserError("responses.source is not set: name the instruction-tuning run to answer (e.g. runs/default)")
    return resolve_data(Path(cfg.source).expanduser(), no_eval=True).train


def source_records(cfg: ResponsesConfig, seed: int) -> list[Record]:
    """One record per train example (an instruction with one of its inputs), constraints added where drawn."""
    path = source_file(cfg)
    if path.name.startswith("eval."):
        raise UserError("is an eval split: preference data is made from train instructions only", path=path)
    out, seen = [], {}
    for row in load_examples(path):
        k = seen[row["id"]] = seen.get(row["id"], -1) + 1
        rid = f"{row['id']}-{k}"
        prompt = [dict(m) for m in row["prompt"]]
        users = [m for m in prompt if m["role"] == "user"]
        if not users:
            raise UserError(f"example {row['id']} has no user message", path=path)
        r = Record(id=rid, instruction=users[-1]["content"])
        r.extra["source"] = {"id": row["id"], "example": k}
        if constrain_share(r, seed, "responses", cfg.constraints, cfg.max_constraints, cfg.constraint_types):
            users[-1]["content"] = r.instruction
        r.extra["prompt"] = prompt
        out.append(r)
        if cfg.limit is not None and len(out) >= cfg.limit:
            break
    if not out:
        raise UserError("no train examples to answer", path=path)
    return out


@register_stage
class Responses(BatchStage):
    name = "responses"
    Config = ResponsesConfig
    template_version = "responses-v1"
    code_version = 1  # 1: constraints from the constraint library (the `constraints` field: items, description)
    writes = frozenset({"instruction", "instances", "source", "prompt", "responses", "constraints"})
    source = True
    uses_model = True
    order = 10

    @classmethod
    def input_digest(cls, cfg: ResponsesConfig) -> str:
        import hashlib
        path = source_file(cfg)
        return stable_hash({"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})

    def input(self, inputs) -> SourceRecords:
        return SourceRecords(source_records(self.cfg, self.ctx.cfg.seed))

    def requests(self, batch: list[Record]) -> list[Request]:
        return [Request.from_sampling(r.extra["prompt"], self.cfg.sampling,
                                      seed=derive_seed(self.ctx.cfg.seed, self.name, r.id, k))
                for r in batch for k in range(self.cfg.samples)]

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        k = self.cfg.samples
        for j, r in enumerate(batch):
            answers = completions[j * k:(j + 1) * k]
            r.instances = [Instance("", c.text.strip()) for c in answers]
            # which answers hit the token budget: a cut answer is judged as it is, and this says why
            r.extra["responses"] = {"truncated": [c.finish_reason == "length" for c in answers]}
            out.counts.add("responses", k)
            out.counts.add("truncated", sum(c.finish_reason == "length" for c in answers))
            if "constraints" in r.extra:
                out.counts.add("constrained_prompts")
            out.keep(r)
        return out
