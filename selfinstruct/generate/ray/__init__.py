"""`executor: ray`: a run's model stages on engine replicas held by a Ray cluster (registered through the
entry-point group `selfinstruct.executors`; nothing else in the package names this one).

Batch stages run as Ray Data jobs (executor.py, engines.py); a generator's requests fan out to replica
actors (replicas.py); cluster.py holds the `ray:` settings and the connection. Ray is optional: nothing
here imports it at module level, and a run that asks for it without it installed fails in one line."""
from __future__ import annotations

from typing import Any

from ..executors import register_executor
from .cluster import RayOptions, Session, require_ray

# backends Ray runs as replicas (an OpenAI-compatible server keeps the project's own client here)
RAY_BACKENDS = ("vllm", "fake")


def _require() -> None:
    require_ray()


@register_executor("ray", RayOptions, require=_require)
class RaySession:
    """The run's Ray cluster, connected to (or started) when a stage first needs it."""

    def __init__(self, options: RayOptions):
        self.options = options
        self.cluster: Session | None = None

    def connect(self) -> None:
        if self.cluster is None:
            self.cluster = Session(self.options)

    def batch_executor(self, stage: str, backend: str, model_path: str, options: Any, seed: int):
        from .engines import ray_engine
        from .executor import RayExecutor

        engine = ray_engine(backend, model_path, options, self.options, seed=seed)
        if engine is None:
            return None
        self.connect()
        return RayExecutor(engine, self.options)

    def replicas(self, backend: str, model_path: str, options: Any, seed: int):
        if backend not in RAY_BACKENDS:
            return None
        from .replicas import RayReplicas

        self.connect()
        return RayReplicas(backend, model_path, options, self.options, seed=seed)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
