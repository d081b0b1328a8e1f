"""The report as typed sections, and the tables that both the terminal and the HTML renderer show.

:mod:`.compute` fills a :class:`Report`; :mod:`.text` and :mod:`.html` render it. A table that both
show is built once here (:func:`stage_table`, :func:`drop_table`, :func:`verb_table`): a
:class:`Column` carries its full title (HTML) and a brief one (the terminal, whose tables fit 100
columns), and a cell that is worded shorter in the terminal is a :class:`Label`.
:meth:`Report.to_dict` gives the plain, JSON-serialisable form."""
from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from typing import Any

from ..io.records import Instance
from .diversity import Diversity

DROP_LEVELS = ("record", "instance", "note")  # the levels of Counts.drops, in the order they are listed


# ------------------------------------------------------------------------------------------- sections

@dataclass
class Summary:
    n: int
    min: float | None = None
    median: float | None = None
    mean: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> "Summary":
        if not values:
            return cls(0)
        return cls(len(values), min(values), statistics.median(values), statistics.fmean(values), max(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if self.n else {"n": 0}


@dataclass
class Share:
    """`yes` of `total` (classification tasks among instructions)."""
    yes: int
    total: int

    @property
    def no(self) -> int:
        return self.total - self.yes

    @property
    def share(self) -> float | None:
        return self.yes / self.total if self.total else None


@dataclass
class InstanceTally:
    """Instances (input/output examples) a stage received, kept and dropped."""
    rows_in: int
    rows_out: int
    dropped: int


@dataclass
class StageSection:
    name: str
    complete: bool
    rows_in: int  # records: out + dropped (for a generator: candidates parsed + unparseable answers)
    rows_out: int
    dropped: int  # records dropped
    drops: dict[str, dict[str, int]]  # level (DROP_LEVELS) -> reason -> count, from Counts
    requests: int
    prompt_tokens: int
    completion_tokens: int
    rejects_rows: int
    generator: bool
    warning: str | None = None
    instances: InstanceTally | None = None
    classification: Share | None = None  # the classify stage's answers
    export: dict[str, int] | None = None  # train/eval examples and instructions written
    reached: bool | None = None  # a generator's: whether it reached num_instructions

    @property
    def accept(self) -> float | None:
        return self.rows_out / self.rows_in if self.rows_in else None


@dataclass
class StageRows:
    """Which stage's rows a section reads, and how many it has."""
    stage: str | None
    count: int


@dataclass
class SeedInfo:
    path: str | None
    count: int


@dataclass
class LengthSection:
    """Lengths in whitespace-separated words (as the bootstrap length filter counts them)."""
    generated: list[int]
    seeds: list[int]
    summary: Summary
    seed_summary: Summary
    input_summary: Summary  # of the final records' instances
    output_summary: Summary


@dataclass
class RougeMatch:
    id: str
    instruction: str
    seed_id: str | None
    seed: str
    score: float


@dataclass
class RougeSection:
    """ROUGE-L F1 of every generated instruction to its nearest seed instruction (exact)."""
    scores: list[float]
    summary: Summary
    threshold: float | None  # the generator's rouge filter threshold, from the run's config
    above_0_5: int
    above_threshold: int
    closest: list[RougeMatch]


@dataclass
class Example:
    """A record or a reject, cut down to what the report shows. None: the row has no such field."""
    id: str | None
    instruction: str | None = None
    reason: str | None = None
    detail: str | None = None
    error: str | None = None
    kept_as: str | None = None
    is_classification: bool | None = None
    nearest: dict[str, Any] | None = None
    instances: list[Instance] = field(default_factory=list)
    level: str = "record"  # "instance" for a reject of one instance (its output says why)
    raw: str | None = None  # the model's text, shown when there is no instruction

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        for k in ("instruction", "reason", "detail", "error", "kept_as", "is_classification", "nearest"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.instances:
            out["instances"] = [i.to_json() for i in self.instances]
        if self.level != "record":
            out["level"] = self.level
        if self.raw is not None:
            out["raw"] = self.raw
        return out


@dataclass
class Report:
    run_dir: str
    config: dict[str, Any]  # name, model, backend, seed of the run's config (those it has)
    stages: list[StageSection]
    notes: list[str]  # why a section is missing
    seeds: SeedInfo
    generated: StageRows  # the generator stage: its kept instructions are "the generated instructions"
    final: StageRows  # the last stage with records
    length: LengthSection
    final_classification: Share | None = None
    rouge: RougeSection | None = None
    diversity: Diversity | None = None
    seed_diversity: Diversity | None = None
    kept_examples: list[Example] = field(default_factory=list)
    reject_examples: dict[str, dict[str, list[Example]]] = field(default_factory=dict)  # stage -> reason
    judge: Any = None  # a judge.JudgeSection when the run has a judge stage (that module imports this one)
    constraints: Any = None  # a constraints.ConstraintSection when the run has a verify stage

    @property
    def classifier(self) -> StageSection | None:
        """The stage that classified the instructions (its answers give the classification share)."""
        return next((st for st in self.stages if st.classification is not None), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form (stage keys `in`/`out`, shares precomputed)."""
        out: dict[str, Any] = {
            "run_dir": self.run_dir, "config": dict(self.config), "stages": [_stage_dict(s) for s in self.stages],
            "notes": list(self.notes), "generated": dataclasses.asdict(self.generated),
            "final": dataclasses.asdict(self.final), "seeds": dataclasses.asdict(self.seeds),
            "length": {"generated": self.length.generated, "seeds": self.length.seeds,
                       **{k: getattr(self.length, k).to_dict()
                          for k in ("summary", "seed_summary", "input_summary", "output_summary")}},
            "kept_examples": [e.to_dict() for e in self.kept_examples],
            "reject_examples": {s: {r: [e.to_dict() for e in exs] for r, exs in per.items()}
                                for s, per in self.reject_examples.items()},
        }
        fc = self.final_classification
        if fc is not None:
            out["final_classification"] = {"yes": fc.yes, "n": fc.total, "share": fc.share}
        if self.rouge is not None:
            out["rouge"] = dict(dataclasses.asdict(self.rouge), summary=self.rouge.summary.to_dict())
        if self.diversity is not None:
            out["diversity"] = dataclasses.asdict(self.diversity)
        if self.judge is not None:
            out["judge"] = self.judge.to_dict()
        if self.constraints is not None:
            out["constraints"] = self.constraints.to_dict()
        if self.seed_diversity is not None:
            sd = self.seed_diversity
            out["seed_diversity"] = {"total": sd.total, "kinds": sd.kinds, "distinct_verbs": sd.distinct_verbs,
                                     "distinct_pairs": sd.distinct_pairs}
        return out


def _stage_dict(st: StageSection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stage": st.name, "complete": st.complete, "in": st.rows_in, "out": st.rows_out, "dropped": st.dropped,
        "accept": st.accept, "drops": st.drops, "requests": st.requests, "prompt_tokens": st.prompt_tokens,
        "completion_tokens": st.completion_tokens, "rejects_rows": st.rejects_rows}
    if st.warning is not None:
        out["warning"] = st.warning
    if st.instances is not None:
        out["instances"] = {"in": st.instances.rows_in, "out": st.instances.rows_out,
                            "dropped": st.instances.dropped}
    if st.classification is not None:
        c = st.classification
        out["classification"] = {"yes": c.yes, "no": c.no, "share": c.share}
    if st.export is not None:
        out["export"] = dict(st.export)
    if st.reached is not None:
        out["reached"] = st.reached
    return out


# --------------------------------------------------------------------------------------------- tables

@dataclass(frozen=True)
class Column:
    title: str
    brief: str | None = None  # the terminal's title, when shorter
    kind: str = "text"  # text | number | tally (a count the terminal leaves blank at 0) | share
    max_chars: int | None = None  # the terminal clips longer cells

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


@dataclass(frozen=True)
class Label:
    """A cell worded shorter in the terminal."""
    full: str
    brief: str


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Any]]


def clip(value: Any, limit: int) -> str:
    """One line of at most `limit` characters: newlines shown as `\\n`, runs of spaces collapsed,
    '...' where it was cut."""
    text = "" if value is None else str(value)
    text = " ".join(text.replace("\r", "").replace("\n", " \\n ").split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else str(x)


def cell_text(column: Column, value: Any, brief: bool) -> str:
    """A cell as the terminal (brief) or the HTML report shows it."""
    if column.kind == "share":
        return pct(value)
    if value is None:
        return ""
    if isinstance(value, Label):
        return value.brief if brief else value.full
    if column.kind == "tally" and brief and not value:
        return ""
    return num(value)


def drop_share(st: StageSection, level: str, n: int) -> float | None:
    """A drop count as a share of what the stage received: its instances for an instance-level drop,
    else its records."""
    base = st.instances.rows_in if level == "instance" and st.instances is not None else st.rows_in
    return n / base if base else None


def stage_table(report: Report) -> Table:
    return stages_table(report.stages)


def stages_table(stages: list[StageSection]) -> Table:
    """Rows in and out of each stage (the dataset card shows it too, from the stages alone)."""
    columns = [Column("stage"), Column("status"), Column("in", kind="number"), Column("out", kind="number"),
               Column("dropped", kind="number"), Column("accept rate", "accept", "share"),
               Column("requests", kind="tally"), Column("prompt tokens", "prompt tok", "tally"),
               Column("completion tokens", "compl. tok", "tally")]
    return Table(columns, [[st.name, "complete" if st.complete else "partial", st.rows_in, st.rows_out,
                            st.dropped, st.accept, st.requests, st.prompt_tokens, st.completion_tokens]
                           for st in stages])


def drop_table(report: Report) -> Table:
    return drops_table(report.stages)


def drops_table(stages: list[StageSection]) -> Table:
    """Every drop reason of every stage, most frequent first within a stage and level."""
    columns = [Column("stage"), Column("level"), Column("reason", max_chars=40), Column("count", kind="number"),
               Column("share of stage input", "share", "share")]
    rows = []
    for st in stages:
        for level in DROP_LEVELS:
            label = Label("note (record kept)", "note (kept)") if level == "note" else level
            for reason, n in sorted(st.drops[level].items(), key=lambda kv: (-kv[1], kv[0])):
                rows.append([st.name, label, reason, n, drop_share(st, level, n)])
    return Table(columns, rows)


def verb_table(dv: Diversity) -> Table:
    columns = [Column("root verb", "verb"), Column("with an object", "count", "number"),
               Column("top direct objects", "top objects", max_chars=80)]
    return Table(columns, [[x.verb, x.count, Label(", ".join(f"{o} ({n})" for o, n in x.objects),
                                                   ", ".join(f"{o} {n}" for o, n in x.objects))]
                           for x in dv.top])


def length_edges(values: list[int]) -> list[int]:
    """Histogram bin edges for word counts: about 15 bins of a round width."""
    hi = max(values, default=1)
    step = max(1, -(-hi // 15))
    for nice in (1, 2, 5, 10, 20, 25, 50, 100):
        if nice >= step:
            step = nice
            break
    return list(range(0, hi + step + 1, step))
