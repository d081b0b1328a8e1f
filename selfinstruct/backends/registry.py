"""`@register_backend`: the decorator a backend module applies to its class, the specs it records, and the
lookups (which load the backends other packages name in the entry-point group `selfinstruct.backends`).
A leaf of the backends package: the built-in backends import it, and the package imports them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..entry_points import load_group
from .base import Backend


@dataclass(frozen=True)
class BackendSpec:
    name: str
    cls: type[Backend]
    options: type  # the dataclass of its config section
    local_model: bool  # the model must be a folder here (in-process engines): resolved before anything runs
    in_process: bool  # holds the model in this machine's (GPU) memory: one such engine at a time


_BACKENDS: dict[str, BackendSpec] = {}


def register_backend(name: str, options: type, *, local_model: bool = False, in_process: bool = False):
    """Class decorator: `cls(model, options, seed=...)` becomes available as `backend: name`."""
    def deco(cls: type[Backend]) -> type[Backend]:
        cls.kind = name
        _BACKENDS[name] = BackendSpec(name, cls, options, local_model, in_process)
        return cls
    return deco


def backends() -> dict[str, BackendSpec]:
    """Every backend: built-in ones and those of other packages (and the test backend `fake`), which register
    through the entry-point group `selfinstruct.backends`."""
    load_group("selfinstruct.backends")
    return dict(_BACKENDS)


def backend_spec(name: str) -> BackendSpec:
    return backends()[name]


def create_backend(name: str, model: str, options: Any, *, seed: int = 0) -> Backend:
    return backend_spec(name).cls(model, options, seed=seed)
