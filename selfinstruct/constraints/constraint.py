"""`Constraint`: one constraint of one prompt (a type id and its parameters), and what the stages that
add constraints to prompts and verify answers do with a list of them: sample, describe, check.

A record stores a constraint as `{"id": ..., "kwargs": {...}}` (`to_dict` / `from_dict`); the same
answer and the same constraint always give the same verdict (every check is a pure function)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .base import ConstraintType
from .plugins import conflict_table, constraint_types, get_type


@dataclass(frozen=True)
class Constraint:
    id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def type(self) -> ConstraintType:
        return get_type(self.id)

    def describe(self, phrasing: int | random.Random = 0) -> str:
        """The constraint in words, in phrasing number `phrasing` or one drawn from an rng."""
        return self.type.describe(self.kwargs, phrasing)

    def check(self, text: str, loose: bool = False) -> bool:
        t = self.type
        return t.check_loose(text, **self.kwargs) if loose else t.check(text, **self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "Constraint":
        return cls(str(row["id"]), dict(row.get("kwargs") or {}))


def sample_constraints(rng: random.Random, k: int, types: Iterable[str] | None = None) -> list[Constraint]:
    """Up to `k` constraints for one prompt, all of different types and no two conflicting
    (`plugins.conflict_table`), each with parameters drawn from `rng`. `types` limits the choice (ids;
    all registered types by default). Fewer than `k` come back only when no compatible type is left.
    Deterministic: the same rng state, k and types give the same constraints."""
    known = constraint_types()
    pool = sorted(known if types is None else set(types))
    unknown = [t for t in pool if t not in known]
    if unknown:
        raise KeyError(f"unknown constraint type(s): {', '.join(unknown)}")
    table = conflict_table()
    chosen: list[Constraint] = []
    while len(chosen) < k:
        left = [t for t in pool if not any(t in table[c.id] for c in chosen)]
        if not left:
            break
        type_id = rng.choice(left)
        chosen.append(Constraint(type_id, known[type_id].sample(rng)))
    return chosen


def compatible(constraints: Sequence[Constraint]) -> bool:
    """No two of `constraints` conflict (and no type comes twice)."""
    table = conflict_table()
    return all(b.id not in table.get(a.id, {a.id}) for i, a in enumerate(constraints) for b in constraints[i + 1:])


def describe_all(constraints: Sequence[Constraint], rng: random.Random | None = None) -> str:
    """The constraints in words, one sentence after another (each in a phrasing drawn from `rng`; the
    first phrasing of each without one), to append to an instruction."""
    return " ".join(c.describe(rng if rng is not None else 0) for c in constraints)


def check_all(text: str, constraints: Sequence[Constraint], loose: bool = False) -> list[bool]:
    """Whether `text` follows each constraint (strict, or IFEval's loose check), in their order."""
    return [c.check(text, loose=loose) for c in constraints]
