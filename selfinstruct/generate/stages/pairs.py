"""Preference pairs from the ranked answers of each prompt: chosen = the best answer, rejected = the
worst. How answers are ranked (`by`):

- `judge` (a preference run): by the `judge` stage's scores (each answer's mean over its judge samples),
  and prompts that carry verifiable constraints (`responses.constraints`) by the checkers: how many of
  its constraints each answer passes (strict), an exact label, no judge;
- `verify` (after the `verify` stage): by its checked answers, exact labels: chosen = the answer it kept
  (passes every constraint), rejected = the one that passes fewest of them.

A prompt with constraints makes a pair only when its chosen answer passes all of them. With
`unconstrained_pairs` (by `verify`, with `verify.base_rate_samples`) a record also makes a Tülu-style pair
(`pair_unconstrained`): the same chosen answer against an answer written for the prompt without its
constraints (the first of verify's base answers that fails one of them).

Dropped, each a reject with its reason and counted in the manifest (so in `stats`):
- `tie`: every answer has the same score (nothing to prefer);
- `unverified`: no answer passes every constraint of the prompt;
- `unranked` (by `verify`): a record verify did not check (it has no constraints);
- `small_margin`: best - worst < `min_margin`;
- `identical_answers`: the best and the worst are the same text;
- `empty_chosen`: the best answer is empty;
- `length_imbalance` (with `length_guard`): the chosen answer is more than `max_length_ratio` times longer
  than the rejected one. Judges prefer long answers; without the guard DPO learns length, not quality.
With `keep_unpaired` such a record is kept (without a pair; the reason counted as a note), so an export
that also writes SFT examples still has it.

Ties within the best (or the worst) are broken by the lowest sample index: a pure function of the record."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from ...backends.base import Completion
from ...constraints import check_all
from ...io.records import Record, Reject
from ...io.settings import setting
from ..constrained import constraints_of
from ..registry import register_stage
from ..stage import BatchStage, StageResult

@dataclass
class PairsConfig:
    by: str = setting("judge", choices=("judge", "verify"),
                      help="judge: the judge's scores (constrained prompts: the checkers); verify: the verify "
                           "stage's checked answers (exact labels)")
    unconstrained_pairs: bool = setting(False, help="by verify: also pair the chosen answer with an answer written "
                                                    "for the prompt without its constraints (Tülu 3 style; needs "
                                                    "verify.base_rate_samples)")
    keep_unpaired: bool = setting(False, help="keep the records that make no pair (the reason counted as a note), "
                                              "for an export that also writes SFT examples")
    min_margin: float = setting(1.0, min=0.0, help="drop pairs whose best - worst score is below this (on the judge's "
                                                   "scale, or in constraints followed)")
    length_guard: bool = setting(True, help="drop pairs whose chosen answer is much longer than the rejected one")
    max_length_ratio: float = setting(1.5, min=1.0, help="with length_guard: the most chosen/rejected length "
                                                         "(characters) kept")
    batch_size: int = setting(256, min=1, help="records per shard")


@dataclass
class Ranking:
    by: str  # judge, constraints (the checkers on the record's instances) or verify
    answers: list[str]
    scores: list[float]
    needed: float | None = None  # the score a chosen answer must have (every constraint passed), or None
    chosen: int | None = None  # the answer to choose (verify's), else the best


def ranking(r: Record, by: str = "judge") -> Ranking | None:
    """How the record's answers are ranked, and each one's score; None: it has nothing to rank them by."""
    v = r.extra.get("verify")
    if by == "verify":
        if not v:
            return None
        return Ranking("verify", list(v["answers"]), [float(sum(p)) for p in v["passed"]],
                       float(len(v["passed"][0]) if v["passed"] else 0), v.get("chosen"))
    answers = [i.output for i in r.instances or []]
    cs = constraints_of(r)
    if cs:
        return Ranking("constraints", answers, [float(sum(check_all(a, cs))) for a in answers], float(len(cs)))
    return Ranking("judge", answers, [statistics.fmean(s) for s in r.extra["judge_scores"]])


def choose(scores: list[float], lengths: list[int], cfg: PairsConfig, chosen: int | None = None,
           needed: float | None = None) -> tuple[dict[str, Any] | None, str]:
    """The pair (indices, scores, margin, length ratio) and why it is dropped ("" when kept). `chosen`: the
    answer to choose (else the best); `needed`: the score it must reach (every constraint passed)."""
    best = max(range(len(scores)), key=lambda i: (scores[i], -i)) if chosen is None else chosen
    worst = min(range(len(scores)), key=lambda i: (scores[i], i))
    margin = scores[best] - scores[worst]
    ratio = lengths[best] / lengths[worst] if lengths[worst] else float("inf")
    pair = {"chosen": best, "rejected": worst, "chosen_score": round(scores[best], 4),
            "rejected_score": round(scores[worst], 4), "margin": round(margin, 4),
            "length_ratio": round(ratio, 4) if lengths[worst] else None}
    if needed is not None and scores[best] < needed:
        return pair, "unverified"
    if margin == 0:
        return pair, "tie"
    if margin < cfg.min_margin:
        return pair, "small_margin"
    if cfg.length_guard and ratio > cfg.max_length_ratio:
        return pair, "length_imbalance"
    return pair, ""


def unconstrained_pair(r: Record, chosen: int, cfg: PairsConfig) -> tuple[dict[str, Any] | None, str]:
    """Tülu 3's pair: the chosen answer against the first answer to the prompt without its constraints
    that fails one of them (verify's base answers)."""
    v = r.extra["verify"]
    base = v.get("base") or {}
    fails = [j for j, p in enumerate(base.get("passed") or []) if not all(p)]
    if not fails:
        return None, "no_unconstrained_rejected"
    j = fails[0]
    good, bad = v["answers"][chosen], base["answers"][j]
    n = len(v["passed"][chosen])
    ratio = len(good) / len(bad) if bad else float("inf")
    pair = {"chosen": chosen, "rejected": j, "chosen_score": float(n), "rejected_score": float(sum(base["passed"][j])),
            "margin": float(n - sum(base["passed"][j])), "length_ratio": round(ratio, 4) if bad else None,
            "ranked_by": "unconstrained"}
    if good.strip() == bad.strip():
        return pair, "identical_answers"
    if cfg.length_guard and ratio > cfg.max_length_ratio:
        return pair, "length_imbalance"
    return pair, ""


@register_stage
class Pairs(BatchStage):
    name = "pairs"
    Config = PairsConfig
    code_version = 1  # 1: a constrained prompt pairs only when its chosen answer passes every constraint
    reads = frozenset({"instruction", "prompt"})
    writes = frozenset({"pair", "pair_unconstrained"})
    order = 60

    @classmethod
    def reads_for(cls, cfg: PairsConfig | None) -> frozenset[str]:
        """By judge: the answers (instances) and their scores; by verify: its checked answers."""
        if cfg is None:
            return cls.reads
        return cls.reads | ({"verify"} if cfg.by == "verify" else {"instances", "judge_scores"})

    def drop(self, out: StageResult, r: Record, why: str, detail: str | None = None) -> None:
        """No pair for `r`: a reject with `why`, or (with `keep_unpaired`, or a Tülu-style pair made) the
        record kept without its pair and `why` counted as a note."""
        more = {} if detail is None else {"detail": detail}
        if self.cfg.keep_unpaired or "pair_unconstrained" in r.extra:
            r.extra.pop("pair", None)
            out.reject(Reject(r.id, why, level="note", **more))
            out.keep(r)
        else:
            out.reject(Reject(r.id, why, record=r, **more))

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        for r in batch:
            rank = ranking(r, self.cfg.by)
            if rank is None or len(rank.answers) < 2:
                self.drop(out, r, "unranked" if rank is None else "too_few_answers")
                continue
            pair, why = choose(rank.scores, [len(a) for a in rank.answers], self.cfg, rank.chosen, rank.needed)
            pair["ranked_by"] = rank.by
            r.extra["pair"] = pair
            chosen, rejected = (rank.answers[pair[k]].strip() for k in ("chosen", "rejected"))
            if not why and chosen == rejected:
                why = "identical_answers"
            if not why and not chosen:  # a judge may rate nothing highly; nobody should train on it
                why = "empty_chosen"
            if self.cfg.unconstrained_pairs and rank.by == "verify" and rank.chosen is not None:
                extra, extra_why = unconstrained_pair(r, rank.chosen, self.cfg)
                if extra_why:
                    out.counts.add(f"no_unconstrained_pair:{extra_why}")
                else:
                    r.extra["pair_unconstrained"] = extra
                    out.counts.add("unconstrained_pairs")
            if why:
                self.drop(out, r, why, f"scores {rank.scores}")
                continue
            out.counts.add(f"ranked_by_{rank.by}")
            out.keep(r)
        return out
