"""The backends a pipeline's stages use: one per (backend, model, server URLs), started when a stage
first needs it, and closed as soon as no later stage does. In-process engines hold the model in (GPU)
memory, so at most one is open at a time: opening another closes the first, and `close` verifies the
engine let its memory go (see backends.vllm_engine.close_llm). With `executor: ray` the batch stages'
requests run on engine replicas held by Ray instead (generate/ray_executor.py): no engine is started
here for them, and one still open here is closed first, so that its memory goes to the replicas."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..backends import Backend, backend_spec, create_backend
from ..models import resolve_model
from ..provenance import model_fingerprint
from ..train.loading import is_adapter_dir, merged_adapter
from .config import PipelineConfig

Key = tuple[str, str, tuple[str, ...]]
RAY_BACKENDS = ("vllm", "fake")  # backends Ray runs as replicas (an OpenAI-compatible server stays a client here)


class Engines:
    def __init__(self, cfg: PipelineConfig, given: Backend | None = None,
                 log: Callable[[str], None] = lambda m: None):
        """`given`: a backend the caller owns (tests, benchmarks): every model stage uses it, and it is
        not closed here."""
        self.cfg, self.given, self.log = cfg, given, log
        self.open: dict[Key, Backend] = {}
        self.paths: dict[str, str] = {}  # model name -> what the backend loads
        self.ray = None  # ray_executor.Session, opened by the first stage that runs on Ray
        self.adapters: dict[str, dict[str, Any]] = {}  # adapter folder -> its fingerprint

    def key(self, stage: str) -> Key:
        opts = self.cfg.backend_options(stage)
        return (self.cfg.backend_of(stage), self.cfg.model_of(stage), tuple(getattr(opts, "base_urls", ()) or ()))

    def model_path(self, stage: str) -> str:
        """The model as its backend loads it. In-process engines need a local folder (the embedded
        model is prepared on first use): resolved before anything runs, so a bad path fails fast."""
        name = self.cfg.model_of(stage)
        if self.given is None and backend_spec(self.cfg.backend_of(stage)).local_model:
            if name not in self.paths:
                if is_adapter_dir(Path(name).expanduser()):  # finetune --no-merge: merged once, cached
                    digest = self.adapter_fingerprint(name)["adapter_sha256"]
                    self.paths[name] = merged_adapter(Path(name).expanduser(), digest)
                else:
                    self.paths[name] = resolve_model(name)
            return self.paths[name]
        return self.paths.get(name) or name

    def fingerprint(self, stage: str) -> dict[str, Any]:
        name = self.cfg.model_of(stage)
        if self.given is not None:
            return {"name": name, "backend": self.given.kind}
        if is_adapter_dir(Path(name).expanduser()):  # the adapter's own files (and its merged folder's)
            return {**self.adapter_fingerprint(name), "merged": model_fingerprint(name, self.model_path(stage))}
        return model_fingerprint(name, self.model_path(stage))

    def adapter_fingerprint(self, name: str) -> dict[str, Any]:
        """An adapter folder's fingerprint, hashed once (its digest also names the merged folder)."""
        if name not in self.adapters:
            self.adapters[name] = model_fingerprint(name)
        return self.adapters[name]

    def get(self, stage: str) -> Backend:
        if self.given is not None:
            return self.given
        key = self.key(stage)
        if key not in self.open:
            if backend_spec(key[0]).in_process:
                for other in [k for k in self.open if backend_spec(k[0]).in_process]:
                    self.log(f"closing the {other[0]} engine of {other[1]} before starting {key[1]}")
                    self.open.pop(other).close()
            self.open[key] = self.replicas(stage) or create_backend(
                key[0], self.model_path(stage), self.cfg.backend_options(stage), seed=self.cfg.seed)
        return self.open[key]

    def replicas(self, stage: str) -> Backend | None:
        """With `executor: ray`, a generator's requests fan out to `ray.replicas` engines held by Ray
        (ray_replicas.py); the stage's single writer stays here. None: this process's own backend."""
        if self.cfg.executor != "ray" or self.cfg.backend_of(stage) not in RAY_BACKENDS:
            return None
        from .ray_executor import Session
        from .ray_replicas import RayReplicas

        if self.ray is None:
            self.ray = Session(self.cfg.ray)
        return RayReplicas(self.cfg.backend_of(stage), self.model_path(stage), self.cfg.backend_options(stage),
                           self.cfg.ray, seed=self.cfg.seed)

    def executor(self, stage: str):
        """The executor of a batch stage: Ray's when configured (and the backend has a Ray engine),
        else the local one around this process's backend."""
        from .executor import LocalExecutor

        if self.cfg.executor == "ray" and self.given is None:
            from .ray_engines import ray_engine
            from .ray_executor import RayExecutor, Session

            backend = self.cfg.backend_of(stage)
            engine = ray_engine(backend, self.model_path(stage), self.cfg.backend_options(stage), self.cfg.ray,
                                seed=self.cfg.seed)
            if engine is not None:
                # engines held here or by Ray for an earlier stage give their memory to this one's replicas
                for other in [k for k in self.open if backend_spec(k[0]).in_process or k[0] in RAY_BACKENDS]:
                    self.log(f"closing the {other[0]} engine of {other[1]}: {stage} runs on Ray")
                    self.open.pop(other).close()
                if self.ray is None:
                    self.ray = Session(self.cfg.ray)
                return RayExecutor(engine, self.cfg.ray)
            self.log(f"{stage}: the {backend} backend keeps its own client (local executor), not Ray")
        return LocalExecutor(self.get(stage), max_failures=self.cfg.max_consecutive_failures)

    def release(self, later_stages: list[str], uses_model: Callable[[str], bool]) -> None:
        """Close the backends no later stage needs."""
        needed = {self.key(s) for s in later_stages if uses_model(s)}
        for k in [k for k in self.open if k not in needed]:
            self.open.pop(k).close()

    def close(self) -> None:
        while self.open:
            self.open.popitem()[1].close()
        if self.ray is not None:
            self.ray.close()
            self.ray = None
