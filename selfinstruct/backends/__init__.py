"""Generation backends, registered by name: the in-process vLLM engine (`vllm`), any OpenAI-compatible
server (`openai`), and whatever else registers itself with `@register_backend(name, Options)`. The
config section of a backend, the CLI's `--backend` choices and the fail-fast model check all come from
this registry."""
from __future__ import annotations

from . import openai_server, vllm_engine  # noqa: F401  (the built-in backends register themselves; vllm is
#                                            imported when an engine is created)
from .base import Backend, Completion, Request
from .registry import BackendSpec, backend_spec, backends, create_backend, register_backend

__all__ = ["Backend", "BackendSpec", "Completion", "Request", "backend_spec", "backends", "create_backend",
           "register_backend"]
