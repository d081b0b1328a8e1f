"""Which stages exist: the built-in ones (importing `generate.stages` registers them) and those of other
packages, whose entry-point group `selfinstruct.stages` names modules whose import registers a stage
(loaded once, on first use). The config sections, the allowed stage orders (checked from what each stage
reads and writes) and the order `generate --help` lists stages in all come from here."""
from __future__ import annotations

from ..entry_points import load_group
from . import stages as _builtin  # noqa: F401  (each module registers its stage)
from .registry import registered
from .stage import Stage

def stages() -> dict[str, type[Stage]]:
    """Every registered stage by name, built-in ones first."""
    load_group("selfinstruct.stages")
    return registered()


def get_stage(name: str) -> type[Stage]:
    return stages()[name]


def stage_order() -> list[str]:
    """Registered stage names in the order they run in a pipeline (generators first, export last)."""
    names = list(stages())
    return sorted(names, key=lambda n: (get_stage(n).order, names.index(n)))
