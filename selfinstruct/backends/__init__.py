"""Generation backends: the in-process vLLM engine, or any OpenAI-compatible server."""
from __future__ import annotations

from .base import Backend, Completion, Request


def make_backend(cfg, model_path: str) -> Backend:
    if cfg.backend == "vllm":
        from .vllm_engine import VllmBackend
        return VllmBackend(model_path, cfg.vllm, seed=cfg.seed)
    if cfg.backend == "openai":
        from .openai_server import OpenAIBackend
        return OpenAIBackend(model_path, cfg.openai)
    raise ValueError(cfg.backend)


__all__ = ["Backend", "Completion", "Request", "make_backend"]
