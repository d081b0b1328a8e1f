"""`@register_constraint`: the decorator a constraint module applies to its `ConstraintType` subclass, and
nothing else, so a types module (built-in or of another package) imports only this leaf and `base`.
Which types exist, the built-in ones and those other packages name in the entry-point group
`selfinstruct.constraints`, is `constraints.plugins`' business (as `generate.registry` / `generate.plugins`)."""
from __future__ import annotations

from .base import ConstraintType

_TYPES: dict[str, ConstraintType] = {}


def register_constraint(cls: type[ConstraintType]) -> type[ConstraintType]:
    """Class decorator: make a ConstraintType available under `cls.id`. Refuses what a prompt could not
    use (no id, no family, fewer than three phrasings, no nearest evaluation type) and a second class
    under an id already taken, so a plugin cannot silently replace a built-in type."""
    problems = [what for what, bad in (
        ("no id", not cls.id or ":" not in cls.id),
        ("no family", not cls.family),
        ("fewer than three phrasings", len(cls.phrasings) < 3),
        ("no nearest evaluation types (nearest_eval)", not cls.nearest_eval),
        ("conflicts with itself", cls.id in cls.conflicts),
    ) if bad]
    if problems:
        raise TypeError(f"constraint type {cls.__name__}: {', '.join(problems)} (ids are 'namespace:name')")
    held = _TYPES.get(cls.id)
    if held is not None and type(held).__qualname__ != cls.__qualname__:
        raise ValueError(f"constraint type id {cls.id!r} is taken by {type(held).__qualname__}")
    _TYPES[cls.id] = cls()
    return cls


def registered() -> dict[str, ConstraintType]:
    """The types registered so far, by id, in registration order (`plugins.constraint_types()`: all)."""
    return dict(_TYPES)
