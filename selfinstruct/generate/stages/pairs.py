"""Preference pairs from the ranked answers of each prompt: chosen = the best answer, rejected = the
worst. Answers are ranked by the `judge` stage's scores (each answer's mean over its judge samples) or,
for prompts that carry verifiable constraints (`responses.constraints`), by the checkers: how many
constraints the answer follows, an exact label, no judge.

Dropped, each a reject with its reason and counted in the manifest (so in `stats`):
- `tie`: every answer has the same score (nothing to prefer);
- `small_margin`: best - worst < `min_margin`;
- `identical_answers`: the best and the worst are the same text;
- `empty_chosen`: the best answer is empty;
- `length_imbalance` (with `length_guard`): the chosen answer is more than `max_length_ratio` times longer
  than the rejected one. Judges prefer long answers; without the guard DPO learns length, not quality.

Ties within the best (or the worst) are broken by the lowest sample index: a pure function of the record."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from ...backends.base import Completion
from ...io.records import Record, Reject
from ...io.settings import setting
from ..registry import register_stage
from ..stage import BatchStage, StageResult


@dataclass
class PairsConfig:
    min_margin: float = setting(1.0, min=0.0, help="drop pairs whose best - worst score is below this (on the judge's "
                                                   "scale, or in constraints followed)")
    length_guard: bool = setting(True, help="drop pairs whose chosen answer is much longer than the rejected one")
    max_length_ratio: float = setting(1.5, min=1.0, help="with length_guard: the most chosen/rejected length "
                                                         "(characters) kept")
    batch_size: int = setting(256, min=1, help="records per shard")


def answer_scores(r: Record) -> tuple[str, list[float]]:
    """How the record's answers are ranked ("constraints" or "judge") and each answer's score."""
    c = r.extra.get("constraints")
    if c:
        from ...evals.training_constraints import followed  # (numpy and the checkers: when a run needs them)
        return "constraints", [float(followed(r.instruction, c["ids"], c["kwargs"], i.output)) for i in r.instances]
    return "judge", [statistics.fmean(s) for s in r.extra["judge_scores"]]


def choose(scores: list[float], lengths: list[int], cfg: PairsConfig) -> tuple[dict[str, Any] | None, str]:
    """The pair (indices, scores, margin, length ratio) or None and why not."""
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    worst = min(range(len(scores)), key=lambda i: (scores[i], i))
    margin = scores[best] - scores[worst]
    ratio = lengths[best] / lengths[worst] if lengths[worst] else float("inf")
    pair = {"chosen": best, "rejected": worst, "chosen_score": round(scores[best], 4),
            "rejected_score": round(scores[worst], 4), "margin": round(margin, 4),
            "length_ratio": round(ratio, 4) if lengths[worst] else None}
    if margin == 0:
        return pair, "tie"
    if margin < cfg.min_margin:
        return pair, "small_margin"
    if cfg.length_guard and ratio > cfg.max_length_ratio:
        return pair, "length_imbalance"
    return pair, ""


@register_stage
class Pairs(BatchStage):
    name = "pairs"
    Config = PairsConfig
    reads = frozenset({"instruction", "instances", "prompt", "judge_scores"})
    writes = frozenset({"pair"})
    order = 60

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        for r in batch:
            if not r.instances or len(r.instances) < 2:
                out.reject(Reject(r.id, "too_few_answers", record=r))
                continue
            by, scores = answer_scores(r)
            pair, why = choose(scores, [len(i.output) for i in r.instances], self.cfg)
            pair["ranked_by"] = by
            r.extra["pair"] = pair
            chosen, rejected = (r.instances[pair[k]].output.strip() for k in ("chosen", "rejected"))
            if not why and chosen == rejected:
                why = "identical_answers"
            if not why and not chosen:  # a judge may rate nothing highly; nobody should train on it
                why = "empty_chosen"
            if why:
                out.reject(Reject(r.id, why, record=r, detail=f"scores {scores}"))
                continue
            out.counts.add(f"ranked_by_{by}")
            out.keep(r)
        return out
