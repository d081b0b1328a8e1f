"""What `finetune`, `dpo` and `grpo` share around their trainers: the device, dtype and starting model,
the LoRA config, the output folder (refused when it already holds a model, cleared with --overwrite, resumed with --resume
from OUT/checkpoints) and the saved result (a full model, LoRA merged into the base, or an adapter).

Their configs share the fields used here (`TrainerSettings`: precision, model_dtype, lora,
keep_checkpoints, ...), so all produce the same kinds of folders, and summaries that end alike: vLLM and
transformers load any of them as the next policy.
torch / transformers / peft are imported inside the functions: `selfinstruct --help` stays fast."""
from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..io.errors import UserError
from ..io.jsonl import atomic_write_json
from ..io.settings import to_dict
from .loading import load_causal_lm, load_tokenizer

CHECKPOINT_DIR = "checkpoints"
ADAPTER_SUBDIR = "adapter"
MODEL_FILE_PATTERNS = ("config.json", "generation_config.json", "model*.safetensors", "model.safetensors.index.json",
                       "pytorch_model*.bin", "adapter_config.json", "adapter_model.*", "tokenizer*",
                       "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt",
                       "training_args.bin", "README.md")


def device_setup(cfg) -> tuple[bool, str, Any]:
    """(cuda?, mixed precision, weight dtype) for cfg.precision / cfg.model_dtype ("auto": by device)."""
    import torch

    cuda = torch.cuda.is_available()
    precision = cfg.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    dtype_name = cfg.model_dtype
    if dtype_name == "auto":
        dtype_name = "bfloat16" if (cfg.lora.enabled and cuda and precision == "bf16") else "float32"
    return cuda, precision, getattr(torch, dtype_name)


def load_policy(cfg, model_path: str) -> tuple[bool, str, Any, Any, Any]:
    """(cuda?, mixed precision, weight dtype, tokenizer, model) of the model a trainer starts from; the
    KV cache off when gradient checkpointing is on (the two do not go together)."""
    cuda, precision, dtype = device_setup(cfg)
    tok = load_tokenizer(model_path, cfg.model, cfg.chat_template)
    model = load_causal_lm(model_path, cfg.model, dtype=dtype)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
    return cuda, precision, dtype, tok, model


def lora_config(lora) -> Any:
    """peft's LoraConfig for the `lora:` settings, or None when LoRA is off."""
    if not lora.enabled:
        return None
    from peft import LoraConfig

    targets: Any = list(lora.target_modules)
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                      bias="none", task_type="CAUSAL_LM")


def clear_outputs(out: Path, summary_file: str) -> None:
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    shutil.rmtree(out / ADAPTER_SUBDIR, ignore_errors=True)
    for pat in (*MODEL_FILE_PATTERNS, summary_file):
        for f in out.glob(pat):
            if f.is_file():
                f.unlink()


def has_outputs(out: Path) -> bool:
    if not out.is_dir():
        return False
    ck = out / CHECKPOINT_DIR
    return (out / "config.json").exists() or (out / "adapter_config.json").exists() or (
        ck.is_dir() and any(ck.glob("checkpoint-*")))


def prepare_output(out_dir: Path, *, resume: bool, overwrite: bool, summary_file: str) -> str | None:
    """Check OUT against --resume / --overwrite (clearing it for --overwrite); the checkpoint to resume
    from, or None."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError("output exists and is not a directory", path=out_dir)
    last_ckpt = None
    if resume:
        from transformers.trainer_utils import get_last_checkpoint
        ck = out_dir / CHECKPOINT_DIR
        last_ckpt = get_last_checkpoint(str(ck)) if ck.is_dir() else None
        if last_ckpt is None:
            raise UserError("no checkpoint to resume from (checkpoints are deleted after a finished run unless "
                            "keep_checkpoints: true)", path=ck)
    elif has_outputs(out_dir) and not overwrite:
        raise UserError("already holds a trained model or checkpoints: pass --overwrite to replace it, "
                        "or --resume to continue an interrupted run", path=out_dir)

    from accelerate import PartialState
    state = PartialState()
    if overwrite and state.is_main_process and out_dir.is_dir():
        clear_outputs(out_dir, summary_file)
    state.wait_for_everyone()
    return last_ckpt


def make_output_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the output directory: {e.strerror}", path=out_dir) from None


def merge_from_adapter_dir(base_path: str, adapter_dir: Path, out: Path, dtype) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)


def save_trained(trainer, lora, out_dir: Path, base_path: str) -> str:
    """Save the trained model into out_dir; its kind: full | merged | adapter."""
    tok = trainer.processing_class
    main = trainer.accelerator.is_main_process
    model = trainer.accelerator.unwrap_model(trainer.model)
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    for c in {id(x): x for x in (model.config, text_config) if x is not None}.values():
        if hasattr(c, "use_cache"):
            c.use_cache = True  # training may turn the KV cache off; inference wants it on
    kind = "full"
    if lora.enabled and not lora.merge:
        kind = "adapter"
        trainer.save_model(str(out_dir))  # adapter_config.json + adapter_model.safetensors + tokenizer
    elif lora.enabled:
        kind = "merged"
        adapter_dir = out_dir / ADAPTER_SUBDIR
        trainer.save_model(str(adapter_dir))  # handles FSDP/DeepSpeed gathering
        if main:
            if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
                merge_from_adapter_dir(base_path, adapter_dir, out_dir, trainer.model.dtype)
            else:
                merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
                merged.save_pretrained(out_dir, safe_serialization=True)
            tok.save_pretrained(out_dir)
    else:
        trainer.save_model(str(out_dir))
    trainer.accelerator.wait_for_everyone()
    return kind


def finish_output(trainer, out_dir: Path, summary: dict[str, Any], summary_file: str, keep_checkpoints: bool) -> None:
    """Write the summary next to the model; drop the checkpoints unless asked to keep them."""
    if trainer.accelerator.is_main_process:
        atomic_write_json(out_dir / summary_file, summary)
        if not keep_checkpoints:
            shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()


def summary_head(cfg, info: dict[str, Any], files, kind: str) -> dict[str, Any]:
    """The fields every trainer's summary starts with: version, what was saved, from what, on which files."""
    return {"selfinstruct": __version__, "kind": kind,  # full | merged | adapter
            "base_model": cfg.model, "base_model_path": info["model_path"],
            "train_file": str(files.train), "eval_file": str(files.eval) if files.eval else None}


def run_summary(trainer, cfg, info: dict[str, Any], last_ckpt: str | None, t0: float) -> dict[str, Any]:
    """The summary fields every trainer writes after its own: steps, epochs, device, resume and config."""
    return {"steps": trainer.state.global_step, "epochs": round(float(trainer.state.epoch or 0.0), 4),
            "precision": info["precision"], "device": info["device"], "resumed_from": last_ckpt,
            "runtime_s": round(time.time() - t0, 1), "config": to_dict(cfg), "config_file": cfg.source}


def format_summary_rows(rows: list[tuple[str, str]], kind: str, out_dir) -> str:
    """A trainer's summary as aligned rows, ending with what was saved where."""
    what = {"full": "full model", "merged": "full model (LoRA merged)", "adapter": "LoRA adapter"}[kind]
    rows = [*rows, ("saved", f"{what} -> {out_dir}")]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def fmt_metric(x: float | None) -> str:
    """A loss or score for a table: 4 decimals, '-' when missing or NaN."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def trainer_config(config_class, cfg, out_dir: Path, *, cuda: bool, precision: str, has_eval: bool, quiet: bool,
                   extra: dict[str, Any], user: dict[str, Any]):
    """The trainer's config (trl.SFTConfig, trl.DPOConfig) from the settings both commands share, then
    `extra` (the command's own), then `user` (sft_args / dpo_args); a bad value is a UserError."""
    eval_strategy = "steps" if (has_eval and cfg.eval_steps) else "no"
    args: dict[str, Any] = dict(
        output_dir=str(Path(out_dir) / CHECKPOINT_DIR),
        seed=cfg.seed, data_seed=cfg.seed,
        learning_rate=cfg.effective_lr(),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps else -1,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size or cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length,
        warmup_steps=cfg.warmup,
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=precision == "bf16", fp16=precision == "fp16",
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps, logging_first_step=True,
        eval_strategy=eval_strategy, eval_steps=cfg.eval_steps if eval_strategy == "steps" else None,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        report_to="none",
        disable_tqdm=quiet,
        dataloader_pin_memory=cuda,
    )
    if "max_length" not in {f.name for f in dataclasses.fields(config_class)}:
        del args["max_length"]  # GRPO bounds prompts (the command's own check) and answers apart
    args.update(extra)
    args.update(user)
    try:
        return config_class(**args)
    except (ValueError, TypeError) as e:
        where = f" ({cfg.source})" if cfg.source else ""
        raise UserError(f"invalid training arguments{where}: {str(e).splitlines()[0]}") from None
