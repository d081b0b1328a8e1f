"""The backends a pipeline's stages use: one per (backend, model, server URLs), started when a stage
first needs it, and closed as soon as no later stage does. In-process engines hold the model in (GPU)
memory, so at most one is open at a time: opening another closes the first, and `close` verifies the
engine let its memory go (see backends.vllm_engine.close_llm). With another executor than `local`
(`executor: ray`, executors.py) a stage's requests may run on engine replicas elsewhere instead: no
engine is started here for them, and one still open here is closed first, so that its memory goes to
the replicas."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..backends import Backend, backend_spec, create_backend
from ..models import resolve_model
from ..provenance import model_fingerprint
from ..train.loading import is_adapter_dir, merged_adapter
from .config import PipelineConfig
from .executor import LocalExecutor
from .executors import ExecutorSession, executor_spec

Key = tuple[str, str, tuple[str, ...]]


class Engines:
    def __init__(self, cfg: PipelineConfig, given: Backend | None = None,
                 log: Callable[[str], None] = lambda m: None):
        """`given`: a backend the caller owns (tests, benchmarks): every model stage uses it, and it is
        not closed here."""
        self.cfg, self.given, self.log = cfg, given, log
        self.open: dict[Key, Backend] = {}
        self.paths: dict[str, str] = {}  # model name -> what the backend loads
        self._session: ExecutorSession | None = None  # the executor's, opened by the first stage that asks
        self.remote: set[Key] = set()  # open backends whose engines are replicas held by the executor
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
                    self.remote.discard(other)
            self.open[key] = self.replicas(stage) or create_backend(
                key[0], self.model_path(stage), self.cfg.backend_options(stage), seed=self.cfg.seed)
        return self.open[key]

    def session(self) -> ExecutorSession:
        if self._session is None:
            spec = executor_spec(self.cfg.executor)
            self._session = spec.open(self.cfg.sections.get(spec.name) if spec.options else None)
        return self._session

    def replicas(self, stage: str) -> Backend | None:
        """A generator's requests fanned out to engine replicas the executor holds (`executor: ray`); the
        stage's single writer stays here. None: this process's own backend."""
        rep = self.session().replicas(self.cfg.backend_of(stage), self.model_path(stage),
                                      self.cfg.backend_options(stage), self.cfg.seed)
        if rep is not None:
            self.remote.add(self.key(stage))
        return rep

    def executor(self, stage: str):
        """The executor of a batch stage: the configured executor's (when it runs this backend elsewhere),
        else the local one around this process's backend."""
        if self.given is None:
            backend = self.cfg.backend_of(stage)
            ex = self.session().batch_executor(stage, backend, self.model_path(stage),
                                               self.cfg.backend_options(stage), self.cfg.seed)
            if ex is not None:
                # engines held here or as replicas for an earlier stage give their memory to this one's
                for other in [k for k in self.open if backend_spec(k[0]).in_process or k in self.remote]:
                    self.log(f"closing the {other[0]} engine of {other[1]}: {stage} runs on {self.cfg.executor}")
                    self.open.pop(other).close()
                    self.remote.discard(other)
                return ex
            if self.cfg.executor != "local":
                self.log(f"{stage}: the {backend} backend keeps its own client (local executor), "
                         f"not {self.cfg.executor}")
        return LocalExecutor(self.get(stage), max_failures=self.cfg.max_consecutive_failures)

    def release(self, later_stages: list[str], uses_model: Callable[[str], bool]) -> None:
        """Close the backends no later stage needs."""
        needed = {self.key(s) for s in later_stages if uses_model(s)}
        for k in [k for k in self.open if k not in needed]:
            self.open.pop(k).close()
            self.remote.discard(k)

    def close(self) -> None:
        while self.open:
            self.open.popitem()[1].close()
        self.remote.clear()
        if self._session is not None:
            self._session.close()
            self._session = None
