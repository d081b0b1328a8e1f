"""The judge section of `stats` (when a run has a judge stage): the distribution of the judge's scores,
overall and per task type, what the selection kept (and the judge's mean score of what it kept, so a
judge-based selection and the length and random baselines compare on one number), and the judge sanity
figure: for a sample of records the judge also scored the instruction with another record's answer,
and a judge worth its name scores the real answer higher. A judge that gives every answer the same
score shows 0% there, and the report says why."""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from ..judgment import SCALES
from ..run.reader import Run, StageDir
from .sections import Column, Summary, Table

JUDGE_STAGE, SELECT_STAGE = "judge", "select"
UNPARSEABLE = "unparseable_judgment"  # the judge stage's reject reason for an unreadable judgment
TASK_TYPES = {True: "classification", False: "generation", None: "unknown"}


@dataclass
class Sanity:
    """Real answer vs another record's answer, both scored by the judge for the same instruction."""
    pairs: int  # both scores readable
    higher: int  # the real answer scored higher
    ties: int
    lower: int
    unparseable: int  # the mismatched pair's judgment could not be read

    @property
    def share(self) -> float | None:
        return self.higher / self.pairs if self.pairs else None

    @property
    def verdict(self) -> str:
        if not self.pairs:
            return "no pairs scored (judge.sanity_share is 0, or no record had another answer to pair with)"
        if self.ties == self.pairs:
            return ("the judge gave the real and the mismatched answer the same score in every pair: "
                    "it does not tell answers apart")
        return ""


@dataclass
class Selection:
    rule: str
    by: str
    rows_in: int
    kept: int
    kept_mean: float | None  # mean judge score of the kept records (when they were judged)
    dropped_mean: float | None


@dataclass
class JudgeSection:
    rubric: str | None
    low: int
    high: int
    scores: list[float]
    summary: Summary
    unparseable: int
    bins: list[str]  # score bins: "k" holds scores in [k, k+1), the last one the top score
    by_type: dict[str, list[int]]  # task type -> records per bin
    unparseable_by_type: dict[str, int]
    sanity: Sanity
    selection: Selection | None = None
    type_means: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = self.summary.to_dict()
        out["sanity"] = dict(out["sanity"], share=self.sanity.share, verdict=self.sanity.verdict)
        return out


def score_bin(score: float, low: int, high: int) -> int:
    return min(max(math.floor(score), low), high) - low


def sanity_of(rows: list[dict[str, Any]]) -> Sanity:
    pairs = [r["judge_sanity"] for r in rows if isinstance(r.get("judge_sanity"), dict)]
    read = [(p["own"], p["score"]) for p in pairs if p.get("score") is not None]
    return Sanity(len(read), sum(a > b for a, b in read), sum(a == b for a, b in read), sum(a < b for a, b in read),
                  len(pairs) - len(read))


def mean_score(rows) -> float | None:
    scores = [r["judge_score"] for r in rows if isinstance(r.get("judge_score"), (int, float))]
    return statistics.fmean(scores) if scores else None


def selection_of(stage: StageDir) -> Selection:
    info = stage.manifest.get("selection") or {}
    return Selection(rule=str(info.get("rule", "?")), by=str(info.get("by", "?")),
                     rows_in=stage.num_rows() + stage.num_rows(rejects=True), kept=stage.num_rows(),
                     kept_mean=mean_score(stage.rows()), dropped_mean=mean_score(stage.rows(rejects=True)))


def judge_section(run: Run) -> JudgeSection | None:
    stages = {s.name: s for s in run.stages}
    judge = stages.get(JUDGE_STAGE)
    if judge is None:
        return None
    rubric = (run.config.get(JUDGE_STAGE) or {}).get("rubric")
    rows = list(judge.rows())
    scores = [float(r["judge_score"]) for r in rows if isinstance(r.get("judge_score"), (int, float))]
    scale = SCALES.get(rubric)
    low = scale[0] if scale else math.floor(min(scores, default=1))
    high = scale[1] if scale else math.ceil(max(scores, default=5))
    by_type: dict[str, list[int]] = {}
    typed: dict[str, list[float]] = {}
    for r in rows:
        if isinstance(r.get("judge_score"), (int, float)):
            kind = TASK_TYPES.get(r.get("is_classification"), "unknown")
            by_type.setdefault(kind, [0] * (high - low + 1))[score_bin(r["judge_score"], low, high)] += 1
            typed.setdefault(kind, []).append(r["judge_score"])
    unparseable: dict[str, int] = {}
    for r in judge.rows(rejects=True):
        if r.get("reason") == UNPARSEABLE:
            kind = TASK_TYPES.get(r.get("is_classification"), "unknown")
            unparseable[kind] = unparseable.get(kind, 0) + 1
    fractional = any(s != int(s) for s in scores)
    bins = [str(k) if not fractional or k == high else f"{k}-{k + 1}" for k in range(low, high + 1)]
    section = JudgeSection(
        rubric=rubric, low=low, high=high, scores=scores, summary=Summary.of(scores),
        unparseable=sum(unparseable.values()), bins=bins, by_type=by_type, unparseable_by_type=unparseable,
        sanity=sanity_of(rows), type_means={k: statistics.fmean(v) for k, v in typed.items()})
    if SELECT_STAGE in stages:
        section.selection = selection_of(stages[SELECT_STAGE])
    return section


def score_table(js: JudgeSection) -> Table:
    """Records per score bin, overall and per task type, with the unreadable judgments."""
    columns = ([Column("task type"), Column("judged", kind="number"), Column("mean", kind="number")]
               + [Column(b, kind="number") for b in js.bins] + [Column("unreadable", "n/a", "number")])
    rows = []
    kinds = [k for k in TASK_TYPES.values() if k in js.by_type or k in js.unparseable_by_type]
    overall = [sum(js.by_type[k][j] for k in js.by_type) for j in range(len(js.bins))]
    for kind, counts in [("all", overall)] + [(k, js.by_type.get(k, [0] * len(js.bins))) for k in kinds]:
        mean = js.summary.mean if kind == "all" else js.type_means.get(kind)
        bad = js.unparseable if kind == "all" else js.unparseable_by_type.get(kind, 0)
        rows.append([kind, sum(counts), "-" if mean is None else f"{mean:.2f}", *counts, bad])
    return Table(columns, rows)
