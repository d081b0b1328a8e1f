"""An LLM judge: scores every (instruction, input, output) of a record with a rubric (AlpaGasus' 1-5 for
accuracy and helpfulness, or the additive 0-5 rubric of Self-Rewarding LMs, or a template of the
config's own) and keeps the raw judgments and the scores on the record.

Where the engine has structured outputs (vLLM, in process or `vllm serve`) the answer is constrained to
the scale's scores and must be one of them; otherwise the score is read only from the place the rubric
names (`judgment.parse_judgment`: AlpaGasus' first line, the additive rubric's last "Score: N" line).
The instruction, input and answer are fenced with a tag derived from the run's seed and the record's id
(`fence.py`), and a record whose text contains its tag is rejected (`forged_fence`). A judgment that
cannot be read is a reject with the reason, never a default score. Records that carry verifiable constraints (a preference run's `responses.constraints`)
are passed on unjudged: the checkers label their answers exactly (`pairs`). A share of the records is also scored with
another record's answer in place of its own: `stats` reports how often the real answer scores higher
(a judge that cannot tell answers apart shows 0%)."""
from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

from ...backends.base import Completion, Request
from ...io.records import Record, Reject
from ...io.settings import setting
from ..options import Sampling, StageModel
from ...fence import fence_tag
from ..options import derive_seed
from ...judgment import CHOICE, parse_judgment
from ..prompts import RUBRICS, Rubric, judge_prompt
from ..registry import register_stage
from ..stage import BatchStage, StageResult

SANITY = -1  # the instance index of the request that pairs a record's instruction with another's answer


@dataclass
class JudgeConfig(StageModel):
    rubric: str = setting("alpagasus", choices=tuple(RUBRICS),
                          help="alpagasus: accuracy and helpfulness on 1-5 (AlpaGasus); additive: the additive "
                               "0-5 rubric of Self-Rewarding LMs; groundedness: 1-5, is the answer supported by "
                               "its source text (records of the grounded stages; `select` then drops the low ones)")
    template: str | None = setting(None, help="a rubric text of your own, with {instruction}, {input} and {output}; "
                                              "its answers are read on the scale of `rubric`, from its place "
                                              "(alpagasus: the first line; additive: a last 'Score: N' line)")
    samples: int = setting(1, min=1, max=16, help="judgments per instance, averaged (with sampling.temperature > 0)")
    aggregate: str = setting("min", choices=("min", "mean"),
                             help="a record's score from its instances' scores: min (as good as its worst "
                                  "example, each becomes a training example) or mean")
    structured: bool = setting(True, help="constrain the answer to the scale's scores with the engine's structured "
                                          "outputs (vLLM), and read only an answer that is one of them; false for "
                                          "servers without them (the score is read from the rubric's place)")
    sanity_share: float = setting(0.1, min=0.0, max=1.0,
                                  help="share of records also scored with another record's answer (the judge "
                                       "sanity figure of `stats`)")
    batch_size: int = setting(256, min=1, help="records per shard")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=0.0, max_tokens=256))

    def check(self, err) -> None:
        if self.samples > 1 and self.sampling.temperature == 0:
            err("samples", "several samples of a greedy judge (sampling.temperature 0) are all the same answer: "
                           "raise sampling.temperature or set samples: 1")
        if self.template is not None and not ("{instruction}" in self.template and "{output}" in self.template):
            err("template", "must contain {instruction} and {output} (and {input} for the task's input)")


@dataclass(frozen=True)
class Ask:
    """One judge request: which record of the batch, which instance (SANITY: the mismatched pair), which sample."""
    row: int
    instance: int
    sample: int


@register_stage
class Judge(BatchStage):
    name = "judge"
    Config = JudgeConfig
    template_version = "judge-v2"  # the built-in rubrics (prompts.RUBRICS); a custom template is in the config
    reads = frozenset({"instruction", "instances"})
    writes = frozenset({"judge_score", "judge_scores", "judge_raw", "judge_sanity"})
    uses_model = True
    order = 45

    def __init__(self, ctx, cfg):
        super().__init__(ctx, cfg)
        self.rubric: Rubric = RUBRICS[cfg.rubric]
        self.template = cfg.template or self.rubric.template
        self.choices = self.rubric.choices if cfg.structured else None
        self.place = CHOICE if cfg.structured else self.rubric.place

    def tag(self, r: Record) -> str:
        """The fence of this record's texts (the same on resume)."""
        return fence_tag(self.ctx.cfg.seed, r.id)

    def source_text(self, r: Record) -> str | None:
        """What the judge reads in place of an instance's input: the record's source text (a chunk of the
        user's documents) for the groundedness rubric, else None (the input itself)."""
        return (r.extra.get("grounding") or {}).get("text") if self.cfg.rubric == "groundedness" else None

    def forged(self, r: Record) -> bool:
        """Does any text of the record hold its fence's tag? (Then it is not judged: rejected.)"""
        tag = self.tag(r)
        return (tag in r.instruction or tag in (self.source_text(r) or "")
                or any(tag in i.input or tag in i.output for i in r.instances or []))

    def partner(self, batch: list[Record], r: Record, forged: set[str]) -> Record | None:
        """The record whose answer this one's instruction is also scored with, or None (not sampled). Drawn
        within the batch (less the `forged` ids): batches are the same on resume, so the pairs are too."""
        rng = random.Random(derive_seed(self.ctx.cfg.seed, self.name, "sanity", r.id))
        if not r.instances or rng.random() >= self.cfg.sanity_share:
            return None
        own, tag = r.instances[0].output.strip(), self.tag(r)
        others = [o for o in batch if o.id != r.id and o.instances and o.instances[0].output.strip() != own
                  and tag not in o.instances[0].output and o.id not in forged]
        return rng.choice(others) if others else None

    def plan(self, batch: list[Record]) -> tuple[list[Ask], dict[int, Record]]:
        asks, partners = [], {}
        forged = {r.id for r in batch if self.forged(r)}  # once per batch, not once per sampled record
        for row, r in enumerate(batch):
            if r.extra.get("constraints") or r.id in forged:
                continue  # labelled by the constraints' checkers (the pairs stage), or rejected: not judged
            instances = list(range(len(r.instances or [])))
            p = self.partner(batch, r, forged)
            if p is not None:
                partners[row] = p
                instances.append(SANITY)
            asks += [Ask(row, i, s) for i in instances for s in range(self.cfg.samples)]
        return asks, partners

    def requests(self, batch: list[Record]) -> list[Request]:
        asks, partners = self.plan(batch)
        out = []
        for a in asks:
            r = batch[a.row]
            inst = r.instances[0 if a.instance == SANITY else a.instance]
            output = partners[a.row].instances[0].output if a.instance == SANITY else inst.output
            key = "sanity" if a.instance == SANITY else a.instance
            prompt = judge_prompt(self.template, r.instruction, self.source_text(r) or inst.input, output, self.tag(r))
            out.append(Request.from_sampling(prompt, self.cfg.sampling, choices=self.choices,
                                             seed=derive_seed(self.ctx.cfg.seed, self.name, r.id, key, a.sample)))
        return out

    def read(self, texts: list[str]) -> tuple[list[float | None], list[str]]:
        """Each sample's score (None: unreadable) and why not."""
        parsed = [parse_judgment(t, self.rubric.low, self.rubric.high, self.place) for t in texts]
        return [s for s, _ in parsed], [why for _, why in parsed]

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        asks, partners = self.plan(batch)
        texts: dict[tuple[int, int], list[str]] = {}
        for a, c in zip(asks, completions):
            texts.setdefault((a.row, a.instance), []).append(c.text)
        out = StageResult()
        for row, r in enumerate(batch):
            if r.extra.get("constraints"):
                out.counts.add("not_judged_constrained")
                out.keep(r)
                continue
            if not r.instances:
                out.reject(Reject(r.id, "no_instances", instruction=r.instruction))
                continue
            if self.forged(r):
                out.reject(Reject(r.id, "forged_fence", record=r, detail=f"a text contains its fence tag {self.tag(r)}"))
                continue
            raws = [texts[row, i] for i in range(len(r.instances))]
            scores, whys = zip(*(self.read(t) for t in raws))
            bad = [(i, k) for i, s in enumerate(scores) for k, v in enumerate(s) if v is None]
            if not bad:
                means = [statistics.fmean(s) for s in scores]
                agg = min(means) if self.cfg.aggregate == "min" else statistics.fmean(means)
                r.extra["judge_score"] = round(agg, 4)
            r.extra["judge_scores"], r.extra["judge_raw"] = [list(s) for s in scores], raws
            if bad:  # the rejected record keeps every judgment, so the failure can be read in context
                i, k = bad[0]
                out.reject(Reject(r.id, "unparseable_judgment", record=r, raw=raws[i][k],
                                  detail=f"instance {i}, sample {k}: {whys[i][k]}"))
                continue
            if row in partners:
                sanity, _ = self.read(texts[row, SANITY])
                ok = None not in sanity
                r.extra["judge_sanity"] = {"other": partners[row].id, "own": round(means[0], 4),
                                           "score": round(statistics.fmean(sanity), 4) if ok else None,
                                           "raw": texts[row, SANITY]}
                out.counts.add("sanity_pairs" if ok else "sanity_unparseable")
            out.keep(r)
        return out
