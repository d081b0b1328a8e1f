"""`@register_stage`: the decorator a stage module applies to its class, and nothing else, so that a stage
module (built-in or of another package) imports only this leaf. Which stages exist, the built-in ones and
those other packages name in their entry points, is `generate.plugins`' business (simonw/llm keeps its
hook markers apart from its plugin loader the same way)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stage import Stage

_STAGES: dict[str, type["Stage"]] = {}


def register_stage(cls: type["Stage"]) -> type["Stage"]:
    """Class decorator: make a Stage subclass available to pipelines under `cls.name`."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} has no name")
    _STAGES[cls.name] = cls
    return cls


def registered() -> dict[str, type["Stage"]]:
    """The stages registered so far, in registration order (`plugins.stages()`: all of them)."""
    return dict(_STAGES)
