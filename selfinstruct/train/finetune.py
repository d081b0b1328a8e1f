"""`selfinstruct finetune`: supervised fine-tuning with TRL's SFTTrainer on the exported data.

Data is TRL's conversational prompt-completion format, so the loss is computed on the completion only
(prompt tokens get label -100) and the text is rendered with the model's own chat template. Run dirs,
export dirs, prompt-completion / messages JSONL and Alpaca JSON are accepted (the last two are converted).

The output folder is a complete model (full fine-tune, or LoRA merged into the base: loads in vLLM and
transformers as is), or, with LoRA and no merge, a PEFT adapter folder (transformers loads it with peft
installed; vLLM loads it with `enable_lora=True` + `LoRARequest`). The tokenizer, with its chat template,
is saved alongside either way. Checkpoints go to OUT/checkpoints/ (resumable with --resume).

Settings: `train/config.py`; data: `train/data.py`; model loading: `train/loading.py`.
torch / transformers / trl / peft are imported inside the functions: `selfinstruct --help` stays fast.
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..io.errors import UserError
from ..io.jsonl import atomic_write_json
from ..io.settings import to_dict
from ..models import resolve_model
from .config import FinetuneConfig
from .data import DataFiles, load_examples, resolve_data
from .loading import SUMMARY_FILE, load_causal_lm, load_tokenizer, quiet_libraries

CHECKPOINT_DIR = "checkpoints"
ADAPTER_SUBDIR = "adapter"


def _device_setup(cfg: FinetuneConfig):
    import torch

    cuda = torch.cuda.is_available()
    precision = cfg.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    dtype_name = cfg.model_dtype
    if dtype_name == "auto":
        dtype_name = "bfloat16" if (cfg.lora.enabled and cuda and precision == "bf16") else "float32"
    return cuda, precision, getattr(torch, dtype_name)


# ---------------------------------------------------------------------------------------------- train

_MODEL_FILE_PATTERNS = ("config.json", "generation_config.json", "model*.safetensors", "model.safetensors.index.json",
                        "pytorch_model*.bin", "adapter_config.json", "adapter_model.*", "tokenizer*",
                        "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt",
                        "training_args.bin", "README.md", SUMMARY_FILE)


def _clear_outputs(out: Path) -> None:
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    shutil.rmtree(out / ADAPTER_SUBDIR, ignore_errors=True)
    for pat in _MODEL_FILE_PATTERNS:
        for f in out.glob(pat):
            if f.is_file():
                f.unlink()


def _has_outputs(out: Path) -> bool:
    if not out.is_dir():
        return False
    ck = out / CHECKPOINT_DIR
    return (out / "config.json").exists() or (out / "adapter_config.json").exists() or (
        ck.is_dir() and any(ck.glob("checkpoint-*")))


def build_trainer(cfg: FinetuneConfig, files: DataFiles, out_dir: str | Path, *, quiet: bool = False):
    """Load data, model and tokenizer; return (trainer, info). Raises UserError on bad input."""
    out_dir = Path(out_dir)
    train_rows = load_examples(files.train)
    if not train_rows:
        raise UserError("no training examples (the file is empty)", path=files.train)
    eval_rows = load_examples(files.eval) if files.eval is not None else []

    model_path = resolve_model(cfg.model)
    quiet_libraries()
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cuda, precision, dtype = _device_setup(cfg)
    tok = load_tokenizer(model_path, cfg.model, cfg.chat_template)
    model = load_causal_lm(model_path, cfg.model, dtype=dtype)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False

    peft_config = None
    if cfg.lora.enabled:
        from peft import LoraConfig
        targets: Any = list(cfg.lora.target_modules)
        if targets == ["all-linear"]:
            targets = "all-linear"
        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                 target_modules=targets, bias="none", task_type="CAUSAL_LM")

    def as_dataset(rows):
        return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])

    train_ds = as_dataset(train_rows)
    eval_ds = as_dataset(eval_rows) if eval_rows else None
    eval_strategy = "steps" if (eval_ds is not None and cfg.eval_steps) else "no"
    args: dict[str, Any] = dict(
        output_dir=str(out_dir / CHECKPOINT_DIR),
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
        packing=cfg.packing,
        completion_only_loss=True,  # prompt tokens are masked (-100) in the labels
        assistant_only_loss=False,
        logging_steps=cfg.logging_steps, logging_first_step=True,
        eval_strategy=eval_strategy, eval_steps=cfg.eval_steps if eval_strategy == "steps" else None,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        report_to="none",
        disable_tqdm=quiet,
        dataloader_pin_memory=cuda,
    )
    args.update(cfg.sft_args)
    try:
        sft_args = SFTConfig(**args)
    except (ValueError, TypeError) as e:
        where = f" ({cfg.source})" if cfg.source else ""
        raise UserError(f"invalid training arguments{where}: {str(e).splitlines()[0]}") from None
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tok, peft_config=peft_config)
    if len(trainer.train_dataset) == 0:
        raise UserError(f"no training examples left after truncation to max_length={cfg.max_length}",
                        path=files.train)
    info = {"model_path": model_path, "precision": precision, "model_dtype": str(dtype).replace("torch.", ""),
            "train_examples": len(train_rows), "eval_examples": len(eval_rows), "device": "cuda" if cuda else "cpu"}
    return trainer, info


def _losses(log_history: list[dict]) -> tuple[list[float], list[float]]:
    train = [h["loss"] for h in log_history if "loss" in h]
    ev = [h["eval_loss"] for h in log_history if "eval_loss" in h]
    return train, ev


def _merge_from_adapter_dir(base_path: str, adapter_dir: Path, out: Path, dtype) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)


def run_finetune(cfg: FinetuneConfig, data: str | Path, out_dir: str | Path, *, eval_data: str | Path | None = None,
                 no_eval: bool = False, resume: bool = False, overwrite: bool = False, quiet: bool = False,
                 log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Fine-tune cfg.model on DATA and save the result to out_dir. Returns the summary (also written to
    out_dir/selfinstruct-finetune.json)."""
    out_dir = Path(out_dir)
    files = resolve_data(data, eval_data, no_eval)
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
    elif _has_outputs(out_dir) and not overwrite:
        raise UserError("already holds a fine-tuned model or checkpoints: pass --overwrite to replace it, "
                        "or --resume to continue an interrupted run", path=out_dir)

    from accelerate import PartialState
    state = PartialState()
    if overwrite and state.is_main_process and out_dir.is_dir():
        _clear_outputs(out_dir)
    state.wait_for_everyone()

    t0 = time.time()
    trainer, info = build_trainer(cfg, files, out_dir, quiet=quiet)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the output directory: {e.strerror}", path=out_dir) from None
    main = trainer.accelerator.is_main_process
    if main:
        log(f"fine-tuning {cfg.model} ({'LoRA' if cfg.lora.enabled else 'full'}, {info['precision']}, "
            f"{info['device']}) on {info['train_examples']} examples from {files.train}"
            + (f", eval on {info['eval_examples']} from {files.eval}" if files.eval else ""))
    eval_before = eval_after = None
    has_eval = trainer.eval_dataset is not None
    if has_eval:
        eval_before = float(trainer.evaluate()["eval_loss"])
    result = trainer.train(resume_from_checkpoint=last_ckpt)
    if has_eval:
        eval_after = float(trainer.evaluate()["eval_loss"])

    # ---- save
    kind = "full"
    tok = trainer.processing_class
    base_model = trainer.accelerator.unwrap_model(trainer.model)
    text_config = base_model.config.get_text_config() if hasattr(base_model.config, "get_text_config") else None
    for c in {id(x): x for x in (base_model.config, text_config) if x is not None}.values():
        if hasattr(c, "use_cache"):
            c.use_cache = True  # training may turn the KV cache off; inference wants it on
    if cfg.lora.enabled and not cfg.lora.merge:
        kind = "adapter"
        trainer.save_model(str(out_dir))  # adapter_config.json + adapter_model.safetensors + tokenizer
    elif cfg.lora.enabled:
        kind = "merged"
        adapter_dir = out_dir / ADAPTER_SUBDIR
        trainer.save_model(str(adapter_dir))  # handles FSDP/DeepSpeed gathering
        if main:
            if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
                _merge_from_adapter_dir(info["model_path"], adapter_dir, out_dir, trainer.model.dtype)
            else:
                merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
                merged.save_pretrained(out_dir, safe_serialization=True)
            tok.save_pretrained(out_dir)
    else:
        trainer.save_model(str(out_dir))
    trainer.accelerator.wait_for_everyone()

    train_losses, eval_losses = _losses(trainer.state.log_history)
    summary = {
        "selfinstruct": __version__,
        "kind": kind,  # full | merged | adapter
        "base_model": cfg.model,
        "base_model_path": info["model_path"],
        "train_file": str(files.train),
        "eval_file": str(files.eval) if files.eval else None,
        "train_examples": info["train_examples"],
        "eval_examples": info["eval_examples"],
        "steps": trainer.state.global_step,
        "epochs": round(float(trainer.state.epoch or 0.0), 4),
        "train_loss_first": train_losses[0] if train_losses else None,
        "train_loss_last": train_losses[-1] if train_losses else None,
        "train_loss_mean": float(result.training_loss) if result.training_loss is not None else None,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "eval_losses": eval_losses,
        "precision": info["precision"],
        "device": info["device"],
        "resumed_from": last_ckpt,
        "runtime_s": round(time.time() - t0, 1),
        "config": to_dict(cfg),
        "config_file": cfg.source,
    }
    if main:
        atomic_write_json(out_dir / SUMMARY_FILE, summary)
        if not cfg.keep_checkpoints:
            shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return summary


def fmt_metric(x: float | None) -> str:
    """A loss or score for a table: 4 decimals, '-' when missing or NaN."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def format_summary(s: dict[str, Any], out_dir: str | Path) -> str:
    m = fmt_metric
    rows = [
        ("examples", f"train {s['train_examples']}, eval {s['eval_examples']}"),
        ("steps", f"{s['steps']} ({s['epochs']} epochs, {s['runtime_s']} s)"),
        ("train loss", f"{m(s['train_loss_first'])} -> {m(s['train_loss_last'])} (first -> last logged)"),
    ]
    if s["eval_loss_before"] is not None:
        rows.append(("eval loss", f"{m(s['eval_loss_before'])} -> {m(s['eval_loss_after'])} (before -> after)"))
    what = {"full": "full model", "merged": "full model (LoRA merged)", "adapter": "LoRA adapter"}[s["kind"]]
    rows.append(("saved", f"{what} -> {out_dir}"))
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
