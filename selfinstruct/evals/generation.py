"""Greedy answers of one model to many chat prompts, for every evaluation suite.

One vLLM engine per model for all suites together (each prompt keeps its suite's token budget), shut
down and verified gone before the next model's engine starts (`backends.vllm_engine.close_llm`); a
PEFT adapter folder runs as its base model + LoRARequest. Prompts go to the engine as the chat
template's token ids (`backends.chat`), never as re-tokenized text. Where vLLM cannot load a model,
transformers generates instead (`engine="auto"`)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..backends.chat import chat_token_ids
from ..backends.vllm_engine import EngineLeak, close_llm, engine_kwargs, on_cpu, start_llm
from ..io.errors import UserError
from ..models import resolve_model
from ..train.loading import is_adapter_dir, load_for_inference, load_tokenizer, max_positions

ENGINES = ("auto", "vllm", "transformers")
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM accepts for max_lora_rank


@dataclass
class Answer:
    text: str
    cut_off: bool  # stopped at its token budget, not by itself


def prompt_ids(tok, prompts: list[list[dict]], max_length: int) -> list[list[int]]:
    """The template's token ids; an over-long prompt keeps its end (where the generation prompt is)."""
    return [chat_token_ids(tok, m)[-max_length:] for m in prompts]


def generate_vllm(path: str, prompts: list[list[dict]], budgets: list[int], *, max_length: int, seed: int = 0,
                  quiet: bool = False) -> list[Answer]:
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from vllm import SamplingParams

    cpu = on_cpu()
    tok = load_tokenizer(path)
    model_path, lora_request = path, None
    kwargs: dict[str, Any] = {}
    if is_adapter_dir(path):
        from vllm.lora.request import LoRARequest

        acfg = json.loads((Path(path) / "adapter_config.json").read_text())
        model_path = resolve_model(acfg["base_model_name_or_path"])
        rank = int(acfg.get("r") or 16)
        kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=next(r for r in LORA_RANKS if r >= rank))
        lora_request = LoRARequest("tuned", 1, str(path))
    longest = max(budgets)
    max_model_len = max_length + longest
    limit = max_positions(model_path)
    if limit:
        max_model_len = min(max_model_len, int(limit))
    ids = prompt_ids(tok, prompts, max(1, max_model_len - longest))
    # float32 on CPU: models are compared at full precision (fine-tuned folders are saved fp32)
    llm = start_llm(**engine_kwargs(str(model_path), max_model_len=max_model_len, dtype="float32" if cpu else "auto",
                                    seed=seed), **kwargs)  # eager on CPU (vllm_engine.engine_kwargs)
    try:
        params = [SamplingParams(temperature=0.0, max_tokens=b, seed=seed) for b in budgets]
        outs = llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=not quiet,
                            lora_request=lora_request)
        return [Answer(o.outputs[0].text.strip(), o.outputs[0].finish_reason == "length") for o in outs]
    finally:
        close_llm(llm)  # waits until the engine's processes are gone (EngineLeak if they stay)


def generate_transformers(tok, model, prompts: list[list[dict]], budgets: list[int], *, max_length: int,
                          batch_size: int = 8, progress: Callable[[int], Any] | None = None) -> list[Answer]:
    """Greedy answers with transformers generate (left-padded batches of similar lengths and budgets)."""
    import torch

    ids = prompt_ids(tok, prompts, max_length)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    dev = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: (budgets[i], len(ids[i])))  # less padding, one budget per batch
    result: dict[int, Answer] = {}
    b = 0
    while b < len(order):
        budget = budgets[order[b]]
        idx = [i for i in order[b:b + batch_size] if budgets[i] == budget]
        width = max(len(ids[i]) for i in idx)
        input_ids = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in idx], device=dev)
        attn = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in idx], device=dev)
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attn, max_new_tokens=budget,
                                 do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=pad)
        for row, i in enumerate(idx):
            new = out[row, width:].tolist()
            ended = tok.eos_token_id in new
            result[i] = Answer(tok.decode(new, skip_special_tokens=True).strip(), not ended and len(new) >= budget)
        b += len(idx)
        if progress:
            progress(len(idx))
    return [result[i] for i in range(len(ids))]


def answer_all(path: str, name: str, prompts: list[list[dict]], budgets: list[int], *, engine: str = "auto",
               max_length: int = 1024, batch_size: int = 8, quiet: bool = False,
               log: Callable[[str], Any] = print) -> tuple[list[Answer], str]:
    """(answers, engine used). `engine`: auto (vLLM, falling back to transformers), vllm, transformers."""
    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine in ("auto", "vllm"):
        log(f"{name}: {len(prompts)} answers with vLLM")
        try:
            return generate_vllm(path, prompts, budgets, max_length=max_length, quiet=quiet), "vllm"
        except (UserError, EngineLeak):  # a leaked engine would starve whatever runs next
            raise
        except Exception as e:  # vLLM cannot run every model (architecture, adapter): say so, go on
            msg = (str(e).splitlines() or [type(e).__name__])[0][:200]
            if engine == "vllm":
                raise UserError(f"vLLM could not run model {name!r}: {msg}") from None
            log(f"{name}: vLLM failed ({type(e).__name__}: {msg}); using transformers")
    log(f"{name}: {len(prompts)} answers with transformers")
    from tqdm import tqdm
    tok, model = load_for_inference(path, name)
    with tqdm(total=len(prompts), desc=name, disable=quiet) as bar:
        answers = generate_transformers(tok, model, prompts, budgets, max_length=max_length, batch_size=batch_size,
                                        progress=bar.update)
    return answers, "transformers"
