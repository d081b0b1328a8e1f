"""`selfinstruct evaluate`: answer held-out instructions with a base and a tuned model (greedy), write them
side by side with the reference, and report mean ROUGE-L against the references and the completion-only
eval loss (cross-entropy on the reference answer tokens, prompt masked, token-weighted mean) of each model.

Generation uses vLLM in-process (one engine at a time: the first is shut down before the second starts),
or transformers `generate` (`--engine transformers`, or automatically when vLLM cannot load a model).
The eval loss is always a transformers forward pass, so it is comparable with the trainer's eval loss.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from ..backends.vllm_engine import EngineLeak, close_llm, engine_kwargs, on_cpu, start_llm
from ..dedup import rouge_l_f, tokenize
from ..io.errors import UserError
from ..io.jsonl import atomic_write_json, atomic_write_jsonl
from ..models import resolve_model
from .data import load_examples, prompt_completion_ids, resolve_eval_data
from .finetune import fmt_metric
from .loading import (SUMMARY_FILE, free_memory, is_adapter_dir, load_for_inference, load_tokenizer, max_positions,
                      recorded_base_model, resolve_any_model)

ENGINES = ("auto", "vllm", "transformers")


def rouge_l(reference: str, answer: str) -> float:
    """ROUGE-L F1 as rouge-score's score(target=reference, prediction=answer)."""
    return rouge_l_f(new_tokens=tokenize(reference), old_tokens=tokenize(answer))


def _prompt_ids(tok, prompts: list[list[dict]], max_length: int) -> list[list[int]]:
    out = []
    for m in prompts:
        ids = tok.apply_chat_template(m, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
        out.append(list(ids)[-max_length:])  # keep the end of an over-long prompt (the generation prompt)
    return out


def generate_vllm(path: str, prompts: list[list[dict]], *, max_new_tokens: int, max_length: int, seed: int = 0,
                  quiet: bool = False) -> list[str]:
    """Greedy answers from an in-process vLLM engine, shut down before returning. A PEFT adapter folder
    runs as base model + LoRARequest (enable_lora=True)."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
        kwargs.update(enable_lora=True, max_loras=1,
                      max_lora_rank=next(r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank))
        lora_request = LoRARequest("tuned", 1, str(path))
    max_model_len = max_length + max_new_tokens
    limit = max_positions(model_path)
    if limit:
        max_model_len = min(max_model_len, int(limit))
    ids = _prompt_ids(tok, prompts, max(1, max_model_len - max_new_tokens))
    # float32 on CPU: base and tuned are compared at full precision (fine-tuned folders are saved fp32)
    llm = start_llm(**engine_kwargs(str(model_path), max_model_len=max_model_len, dtype="float32" if cpu else "auto",
                                    seed=seed, enforce_eager=cpu), **kwargs)
    try:
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, seed=seed)
        outs = llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=not quiet,
                            lora_request=lora_request)
        return [o.outputs[0].text.strip() for o in outs]
    finally:
        close_llm(llm)  # waits until the engine's processes are gone (EngineLeak if they stay)


def generate_transformers(tok, model, prompts: list[list[dict]], *, max_new_tokens: int, max_length: int,
                          batch_size: int = 8) -> list[str]:
    """Greedy answers with transformers generate (left-padded batches)."""
    import torch

    ids = _prompt_ids(tok, prompts, max_length)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    answers: list[str] = []
    dev = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together: less padding
    result: dict[int, str] = {}
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        width = max(len(ids[i]) for i in idx)
        input_ids = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in idx], device=dev)
        attn = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in idx], device=dev)
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attn, max_new_tokens=max_new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=pad)
        for row, i in enumerate(idx):
            result[i] = tok.decode(out[row, width:], skip_special_tokens=True).strip()
    answers = [result[i] for i in range(len(ids))]
    return answers


def eval_loss(tok, model, rows: list[dict], *, max_length: int = 1024, batch_size: int = 8) -> float:
    """Completion-only cross-entropy (mean over all completion tokens of all rows), chat template applied,
    prompt tokens masked exactly as in training."""
    import torch

    seqs = []
    for r in rows:
        full, n_prompt = prompt_completion_ids(tok, r["prompt"], r["completion"])
        labels = [-100] * n_prompt + full[n_prompt:]
        full, labels = full[:max_length], labels[:max_length]
        if any(x != -100 for x in labels):
            seqs.append((full, labels))
    if not seqs:
        return float("nan")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    for b in range(0, len(seqs), batch_size):
        chunk = seqs[b:b + batch_size]
        width = max(len(s) for s, _ in chunk)
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s, _ in chunk], device=dev)
        attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s, _ in chunk], device=dev)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk], device=dev)
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attn).logits.float()
        shift_logits = logits[:, :-1].reshape(-1, logits.size(-1))
        shift_labels = labels[:, 1:].reshape(-1)
        loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
        total += float(loss)
        count += int((shift_labels != -100).sum())
    return total / count if count else float("nan")


def _user_text(prompt: list[dict]) -> str:
    users = [m["content"] for m in prompt if m["role"] == "user"]
    return users[-1] if users else prompt[-1]["content"]


def run_evaluate(base: str | None, tuned: str, data: str | Path, out: str | Path | None = None, *,
                 max_new_tokens: int = 256, limit: int | None = None, engine: str = "auto", loss: bool = True,
                 max_length: int = 1024, batch_size: int = 8, quiet: bool = False,
                 log: Callable[[str], Any] = print) -> dict[str, Any]:
    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if max_new_tokens < 1:
        raise UserError("--max-new-tokens must be >= 1")
    if max_length < 8:
        raise UserError("--max-length must be >= 8")
    if limit is not None and limit < 1:
        raise UserError("--limit must be >= 1")
    data_file = resolve_eval_data(data)
    rows = load_examples(data_file)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise UserError("no eval examples (the file is empty)", path=data_file)
    if base is None:
        base = recorded_base_model(tuned)
        if base is None:
            raise UserError(f"--base is required: {tuned} has no {SUMMARY_FILE} naming its base model")
    paths = {"base": resolve_any_model(base), "tuned": resolve_any_model(tuned)}
    names = {"base": base, "tuned": tuned}
    if out is None:
        out = Path(tuned) / "evaluation.jsonl" if Path(tuned).is_dir() else Path("evaluation.jsonl")
    out = Path(out)

    prompts = [r["prompt"] for r in rows]
    answers: dict[str, list[str]] = {}
    losses: dict[str, float | None] = {"base": None, "tuned": None}
    used: dict[str, str] = {}
    # 1) answers: each vLLM engine in turn (the first is shut down before the second starts); a model
    #    that runs on transformers gets its eval loss right away, while it is loaded
    for label in ("base", "tuned"):
        path = paths[label]
        got = None
        if engine in ("auto", "vllm"):
            log(f"{label}: generating {len(rows)} answers with vLLM ({names[label]})")
            try:
                got = generate_vllm(path, prompts, max_new_tokens=max_new_tokens, max_length=max_length,
                                    quiet=quiet)
                used[label] = "vllm"
            except (UserError, EngineLeak):  # a leaked engine would starve whatever runs next
                raise
            except Exception as e:
                msg = (str(e).splitlines() or [type(e).__name__])[0][:200]
                if engine == "vllm":
                    raise UserError(f"vLLM could not run model {names[label]!r}: {msg}") from None
                log(f"{label}: vLLM failed ({type(e).__name__}: {msg}); using transformers")
        if got is None:
            log(f"{label}: generating {len(rows)} answers with transformers ({names[label]})")
            hf = load_for_inference(path, names[label])
            got = generate_transformers(*hf, prompts, max_new_tokens=max_new_tokens, max_length=max_length,
                                        batch_size=batch_size)
            used[label] = "transformers"
            if loss:
                log(f"{label}: eval loss (transformers forward pass)")
                losses[label] = eval_loss(*hf, rows, max_length=max_length, batch_size=batch_size)
            del hf
            free_memory()
        answers[label] = got
    # 2) eval loss of the models that generated with vLLM (after the engines are gone)
    for label in ("base", "tuned"):
        if loss and used[label] == "vllm":
            log(f"{label}: eval loss (transformers forward pass)")
            hf = load_for_inference(paths[label], names[label])
            losses[label] = eval_loss(*hf, rows, max_length=max_length, batch_size=batch_size)
            del hf
            free_memory()

    out_rows = []
    for i, r in enumerate(rows):
        ref = r["completion"][-1]["content"]
        out_rows.append({"id": r["id"], "prompt": _user_text(r["prompt"]), "reference": ref,
                         "base": answers["base"][i], "tuned": answers["tuned"][i],
                         "rouge_l_base": rouge_l(ref, answers["base"][i]),
                         "rouge_l_tuned": rouge_l(ref, answers["tuned"][i])})
    atomic_write_jsonl(out, out_rows)
    n = len(out_rows)
    summary = {
        "data": str(data_file), "examples": n, "max_new_tokens": max_new_tokens, "output": str(out),
        "base": {"model": names["base"], "engine": used["base"], "eval_loss": losses["base"],
                 "rouge_l": sum(r["rouge_l_base"] for r in out_rows) / n},
        "tuned": {"model": names["tuned"], "engine": used["tuned"], "eval_loss": losses["tuned"],
                  "rouge_l": sum(r["rouge_l_tuned"] for r in out_rows) / n},
    }
    atomic_write_json(summary_path(out), summary)
    return summary


def summary_path(out: str | Path) -> Path:
    out = Path(out)
    stem = out.name[:-len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(stem + ".summary.json")


def format_table(s: dict[str, Any]) -> str:
    head = ("model", "engine", "ROUGE-L", "eval loss", "name")
    m = fmt_metric
    rows = [(k, s[k]["engine"], m(s[k]["rouge_l"]), m(s[k]["eval_loss"]), s[k]["model"]) for k in ("base", "tuned")]
    w = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in [head, *rows]]
    lines.append(f"{s['examples']} examples from {s['data']}; side by side -> {s['output']}")
    return "\n".join(lines)
