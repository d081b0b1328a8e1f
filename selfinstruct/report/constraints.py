"""The constraints section of `stats` (and of the dataset card), when a run has a `verify` stage: per
constraint type and per family, how many prompts asked for it, its base rate (how often answers to the
prompt *without* the constraint already satisfy it: `verify.base_rate_samples`), pass@1 (the share of
the K answers that pass it) and pass@K (the share of prompts with at least one answer that does); the share
of constrained prompts with a verified answer, overall and counting only the types that fewer than half
of the unconstrained answers already satisfy (a type the model follows unasked verifies nothing).

The per-type figures come from the verify stage's manifest counts (`asked:T`, `answers:T`, `pass1:T`,
`passk:T`, `base_answers:T`, `base_pass:T`, see `generate/stages/verify.py`); the share counting only
the types under the base-rate limit reads its records (kept and rejected), which name their types."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..constraints import constraint_types
from ..run.reader import Run, StageDir
from .sections import Column, Share, Table, pct

VERIFY_STAGE = "verify"
BASE_RATE_LIMIT = 0.5  # types that at least this share of unconstrained answers satisfy are left out of `novel`
FIELDS = ("asked", "answers", "pass1", "passk", "base_answers", "base_pass")


@dataclass
class Rate:
    """One constraint type (or a family: `id` is its name) in the verify stage's answers."""
    id: str
    family: str
    asked: int = 0  # prompts that carried it
    answers: int = 0  # answers checked against it
    pass1: int = 0  # answers that pass it
    passk: int = 0  # prompts with at least one answer that passes it
    base_answers: int = 0  # answers to the prompt without its constraints, checked against it
    base_pass: int = 0

    @property
    def pass_at_1(self) -> float | None:
        return self.pass1 / self.answers if self.answers else None

    @property
    def pass_at_k(self) -> float | None:
        return self.passk / self.asked if self.asked else None

    @property
    def base_rate(self) -> float | None:
        return self.base_pass / self.base_answers if self.base_answers else None

    def add(self, other: "Rate") -> None:
        for f in FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), pass_at_1=self.pass_at_1, pass_at_k=self.pass_at_k, base_rate=self.base_rate)


@dataclass
class ConstraintSection:
    stage: str
    samples: int | None  # K
    base_samples: int | None  # answers per prompt without its constraints (0: no base rates)
    constrained: int  # prompts verify asked
    verified: Share  # prompts with a verified answer, of those asked
    unconstrained: int  # records passed on (or dropped) without constraints
    answers: int
    pass1_all: int  # answers that pass every constraint of their prompt
    passk_all: int  # prompts with at least one such answer (a verified one, unless it was cut)
    types: list[Rate]
    families: list[Rate]
    novel_types: list[str] = field(default_factory=list)  # base rate < BASE_RATE_LIMIT
    novel: Share | None = None  # prompts whose every type is novel: verified of them

    @property
    def followed(self) -> list[str]:
        return [t.id for t in self.types if t.pass1]

    @property
    def never(self) -> list[str]:
        return [t.id for t in self.types if t.answers and not t.pass1]

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("stage", "samples", "base_samples", "constrained", "unconstrained",
                                             "answers", "pass1_all", "passk_all", "novel_types")}
        out["verified"] = {"yes": self.verified.yes, "n": self.verified.total, "share": self.verified.share}
        out["novel"] = None if self.novel is None else {"yes": self.novel.yes, "n": self.novel.total,
                                                        "share": self.novel.share}
        out["types"] = [t.to_dict() for t in self.types]
        out["families"] = [f.to_dict() for f in self.families]
        out["followed"], out["never"] = self.followed, self.never
        return out


def _rates(stage: StageDir) -> list[Rate]:
    known = constraint_types()
    found: dict[str, Rate] = {}
    for name, n in stage.counts.tallies.items():
        kind, _, type_id = name.partition(":")
        if kind in FIELDS and type_id:
            t = known.get(type_id)
            rate = found.setdefault(type_id, Rate(type_id, t.family if t is not None else "?"))
            setattr(rate, kind, getattr(rate, kind) + n)
    order = {t: i for i, t in enumerate(known)}
    return sorted(found.values(), key=lambda r: (order.get(r.id, len(order)), r.id))


def _families(types: list[Rate]) -> list[Rate]:
    out: dict[str, Rate] = {}
    for t in types:
        out.setdefault(t.family, Rate(t.family, t.family)).add(t)
    return list(out.values())


def _novel(stage: StageDir, novel_types: set[str]) -> Share:
    """Prompts whose every constraint type is in `novel_types`, and how many of them were verified."""
    yes = total = 0
    for rejects in (False, True):
        for row in stage.rows(rejects=rejects):
            v, c = row.get("verify"), row.get("constraints")
            if not isinstance(v, dict) or not isinstance(c, dict):
                continue
            ids = {str(i.get("id")) for i in c.get("items") or []}
            if ids and ids <= novel_types:
                total += 1
                yes += v.get("chosen") is not None and not rejects
    return Share(yes, total)


def constraint_section(run: Run) -> ConstraintSection | None:
    stage = next((s for s in run.stages if s.name == VERIFY_STAGE), None)
    if stage is None:
        return None
    cfg = run.config.get(VERIFY_STAGE) or {}
    c = stage.counts
    types = _rates(stage)
    section = ConstraintSection(
        stage=stage.name, samples=cfg.get("samples"), base_samples=cfg.get("base_rate_samples"),
        constrained=c["constrained"], verified=Share(c["verified"], c["constrained"]),
        unconstrained=c["unconstrained"] + c.reasons("record").get("unconstrained", 0), answers=c["answers"],
        pass1_all=c["pass1_all"], passk_all=c["passk_all"], types=types, families=_families(types))
    if any(t.base_answers for t in types):
        section.novel_types = [t.id for t in types if t.base_rate is not None and t.base_rate < BASE_RATE_LIMIT]
        section.novel = _novel(stage, set(section.novel_types))
    return section


def rates_table(cs: ConstraintSection) -> Table:
    """One row per type, then per family, then a prompt's constraints all together."""
    columns = [Column("constraint type", "type"), Column("family"), Column("prompts", kind="number"),
               Column("base rate (without the constraint)", "base rate", "share"),
               Column("pass@1", kind="share"), Column(f"pass@{cs.samples or 'K'}", kind="share")]
    rows = [[t.id, t.family, t.asked, t.base_rate, t.pass_at_1, t.pass_at_k] for t in cs.types]
    rows += [[f"family {f.id}", "", f.asked, f.base_rate, f.pass_at_1, f.pass_at_k] for f in cs.families]
    rows.append(["all of a prompt's", "", cs.constrained, None, cs.pass1_all / cs.answers if cs.answers else None,
                 cs.passk_all / cs.constrained if cs.constrained else None])
    return Table(columns, rows)


def constraint_sentences(cs: ConstraintSection) -> dict[str, str]:
    """The section in words (heading, the novel-types share, followed and never followed types)."""
    v = cs.verified
    out = {"head": f"Constraints ({cs.stage}, {cs.samples or '?'} answers per prompt): {v.yes:,} of {v.total:,} "
                   f"constrained prompts have a verified answer ({pct(v.share)})"
                   + (f"; {cs.unconstrained:,} records without constraints" if cs.unconstrained else "")}
    if cs.novel is not None:
        n = cs.novel
        out["novel"] = (f"counting only the types that fewer than {BASE_RATE_LIMIT:.0%} of the answers without the "
                        f"constraint already satisfy ({len(cs.novel_types)} of {len(cs.types)} types): {n.yes:,} of "
                        f"{n.total:,} prompts verified ({pct(n.share)})")
    else:
        out["novel"] = "no base rates (verify.base_rate_samples is 0)"
    if cs.types:
        out["followed"] = "followed at least once: " + (", ".join(cs.followed) or "none")
        out["never"] = "never followed: " + (", ".join(cs.never) or "none")
    return out
