"""Which constraint types exist: the built-in ones (importing `constraints.types` registers them) and those
of other packages, whose entry-point group `selfinstruct.constraints` names modules whose import registers
a type (loaded once, on first use):

    [project.entry-points."selfinstruct.constraints"]
    rhymes = "my_package.rhymes"

and the conflict table, made symmetric: a plugin type that declares a conflict with a built-in one is
kept apart from it even though the built-in type does not name it."""
from __future__ import annotations

from ..entry_points import load_group
from . import types as _builtin  # noqa: F401  (each module registers its types)
from .base import ConstraintType
from .registry import registered

def constraint_types() -> dict[str, ConstraintType]:
    """Every registered constraint type by id, built-in ones first."""
    load_group("selfinstruct.constraints")
    return registered()


def get_type(type_id: str) -> ConstraintType:
    types = constraint_types()
    if type_id not in types:
        raise KeyError(f"unknown constraint type {type_id!r} (known: {', '.join(sorted(types))})")
    return types[type_id]


def conflict_table() -> dict[str, frozenset[str]]:
    """Type id -> the ids it never shares a prompt with: what it declares, what declares it, and itself."""
    types = constraint_types()
    table = {i: set(t.conflicts) | {i} for i, t in types.items()}
    for i, t in types.items():
        for other in t.conflicts:
            table.setdefault(other, {other}).add(i)
    return {i: frozenset(v) for i, v in table.items()}
