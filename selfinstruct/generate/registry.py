"""The one place that knows which stages exist. A stage registers itself with `@register_stage`; the
config sections, the allowed stage orders (checked from what each stage reads and writes), the prompt
template versions and the stage order that `show` and `stats` use all come from here."""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stage import Stage

_STAGES: dict[str, type["Stage"]] = {}
_BUILTINS_LOADED = False


def register_stage(cls: type["Stage"]) -> type["Stage"]:
    """Class decorator: make a Stage subclass available to pipelines under `cls.name`."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} has no name")
    _STAGES[cls.name] = cls
    return cls


def _load_builtins() -> None:
    """The built-in stages, then those of other packages: the entry-point group `selfinstruct.stages`
    names modules whose import registers a stage."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        from . import stages  # noqa: F401  (each module registers its stage)
        for ep in entry_points(group="selfinstruct.stages"):
            ep.load()


def stages() -> dict[str, type["Stage"]]:
    """Every registered stage by name, built-in ones first."""
    _load_builtins()
    return dict(_STAGES)


def get_stage(name: str) -> type["Stage"]:
    return stages()[name]


def stage_order() -> list[str]:
    """Registered stage names in the order they run in a pipeline (generators first, export last), for
    listing the stages of a run directory."""
    return sorted(stages(), key=lambda n: (get_stage(n).order, list(_STAGES).index(n)))
