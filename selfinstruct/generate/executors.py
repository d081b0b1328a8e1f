"""`@register_executor`: where a run's requests are answered, by name (`executor:` in a pipeline config).

An executor is a factory of `ExecutorSession`s: a run opens one session (on first use: a cluster is
started or connected to only when a stage needs it) and closes it at the end. The session answers two
questions for each model stage; None means "this process's own backend" (the `local` executor always
says so):

* `batch_executor(...)`: an `Executor` (executor.py) that maps a batch stage's batches to completions
  somewhere else (a Ray Data job on engine replicas);
* `replicas(...)`: a `Backend` that fans a generator stage's requests out to engines held elsewhere
  (the generator keeps its single writer in this process).

Other packages add executors through the entry-point group `selfinstruct.executors` (Ray is one such
plugin of this package: `generate/ray/`, named only in pyproject.toml). An executor's options are the
config section of its name (`ray:`); flags declared on them (`--ray-address`) become `generate` flags.
A leaf: it imports nothing of the pipeline."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..entry_points import load_group


class ExecutorSession(Protocol):
    def batch_executor(self, stage: str, backend: str, model_path: str, options: Any, seed: int) -> Any | None:
        """The executor of a batch stage's requests, or None: the local executor around this process's backend."""

    def replicas(self, backend: str, model_path: str, options: Any, seed: int) -> Any | None:
        """A Backend whose requests run elsewhere, for a generator stage, or None: this process's backend."""

    def close(self) -> None:
        ...


@dataclass(frozen=True)
class ExecutorSpec:
    name: str
    options: type | None  # the dataclass of its config section (named like the executor), if any
    open: Callable[[Any], ExecutorSession]  # options -> a session (starts nothing until asked)
    require: Callable[[], None]  # raises a one-line UserError when what it needs is not installed


_EXECUTORS: dict[str, ExecutorSpec] = {}


def register_executor(name: str, options: type | None = None, *, require: Callable[[], None] = lambda: None):
    """Decorator of a session class (or any callable options -> session): `executor: name` uses it."""
    def deco(factory):
        _EXECUTORS[name] = ExecutorSpec(name, options, factory, require)
        return factory
    return deco


class LocalSession:
    """This process's backends answer everything: the pipeline's default."""

    def __init__(self, options: Any = None):
        pass

    def batch_executor(self, stage, backend, model_path, options, seed):
        return None

    def replicas(self, backend, model_path, options, seed):
        return None

    def close(self) -> None:
        pass


register_executor("local")(LocalSession)

def executors() -> dict[str, ExecutorSpec]:
    """Every registered executor by name (loading those named in the entry-point group once)."""
    load_group("selfinstruct.executors")
    return dict(_EXECUTORS)


def executor_spec(name: str) -> ExecutorSpec:
    return executors()[name]
