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

import time
from pathlib import Path
from typing import Any, Callable

from ..io.errors import UserError
from ..models import resolve_model
from .config import FinetuneConfig
from ..io.jsonl import atomic_write_json
from .data import DataFiles, load_examples, resolve_data
from .loading import SUMMARY_FILE, quiet_libraries
from .mixture import MIXTURE_FILE, check_one_kind, is_multi_turn, load_parts, mix, tokenize
from .output import (finish_output, fmt_metric, format_summary_rows, load_policy, lora_config, make_output_dir,
                     prepare_output, run_summary, save_trained, summary_head, trainer_config)


def build_trainer(cfg: FinetuneConfig, files: DataFiles | None, out_dir: str | Path, *, quiet: bool = False,
                  no_eval: bool = False):
    """Load data, model and tokenizer; return (trainer, info). `files` None: the mixture of `cfg.data`
    (train/mixture.py: tokenized here, each row with its own loss mask). Raises UserError on bad input."""
    out_dir = Path(out_dir)
    if files is not None:
        train_rows = load_examples(files.train)
        if not train_rows:
            raise UserError("no training examples (the file is empty)", path=files.train)
        eval_rows = load_examples(files.eval) if files.eval is not None else []

    model_path = resolve_model(cfg.model)
    quiet_libraries()
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cuda, precision, dtype, tok, model = load_policy(cfg, model_path)

    peft_config = lora_config(cfg.lora)
    info: dict[str, Any] = {}
    if files is not None:
        multi = any(is_multi_turn(r) for r in train_rows + eval_rows)

        def as_dataset(rows):
            if multi:  # multi-turn conversations: tokenized here, every assistant turn in the loss
                return Dataset.from_list([tokenize(tok, r) for r in rows])
            return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])

        train_ds = as_dataset(train_rows)
        eval_ds = as_dataset(eval_rows) if eval_rows else None
    else:
        def count(text: str) -> int:
            return len(tok(text, add_special_tokens=False)["input_ids"])

        parts = load_parts(cfg.data, count, cfg.max_length - 1, cfg.text_eval_share, no_eval)
        train_rows, info["mixture"] = mix(parts, cfg.mixture_size, cfg.seed)
        train_ds = Dataset.from_list([tokenize(tok, r) for r in train_rows])
        eval_ds = {p.name: Dataset.from_list([tokenize(tok, r) for r in p.eval]) for p in parts if p.eval} or None
        eval_rows = [r for p in parts for r in p.eval]
    sft_args = trainer_config(SFTConfig, cfg, out_dir, cuda=cuda, precision=precision, has_eval=eval_ds is not None,
                              quiet=quiet, user=cfg.sft_args,
                              extra=dict(packing=cfg.packing,
                                         completion_only_loss=True,  # prompt tokens are masked (-100) in the labels
                                         assistant_only_loss=False))
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tok, peft_config=peft_config)
    if len(trainer.train_dataset) == 0:
        raise UserError(f"no training examples left after truncation to max_length={cfg.max_length}",
                        path=files.train if files is not None else None)
    info.update({"model_path": model_path, "precision": precision, "model_dtype": str(dtype).replace("torch.", ""),
                 "train_examples": len(train_rows), "eval_examples": len(eval_rows),
                 "device": "cuda" if cuda else "cpu"})
    return trainer, info


def eval_losses(trainer) -> tuple[float | None, dict[str, float]]:
    """The eval loss, and with a mixture each source's (its own held-out split), or (None, {})."""
    if trainer.eval_dataset is None:
        return None, {}
    metrics = trainer.evaluate()
    if isinstance(trainer.eval_dataset, dict):
        by = {name: float(metrics[f"eval_{name}_loss"]) for name in trainer.eval_dataset}
        return round(sum(by.values()) / len(by), 6), by
    return float(metrics["eval_loss"]), {}


def _losses(log_history: list[dict]) -> tuple[list[float], list[float]]:
    train = [h["loss"] for h in log_history if "loss" in h]
    ev = [h["eval_loss"] for h in log_history if "eval_loss" in h]
    return train, ev


def run_finetune(cfg: FinetuneConfig, data: str | Path | None, out_dir: str | Path, *,
                 eval_data: str | Path | None = None, no_eval: bool = False, resume: bool = False,
                 overwrite: bool = False, quiet: bool = False, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Fine-tune cfg.model on DATA (or on the mixture `cfg.data`) and save the result to out_dir. Returns
    the summary (also written to out_dir/selfinstruct-finetune.json)."""
    out_dir = Path(out_dir)
    check_one_kind(data, cfg.data, "finetune")
    files = resolve_data(data, eval_data, no_eval) if data is not None else None
    last_ckpt = prepare_output(out_dir, resume=resume, overwrite=overwrite, summary_file=SUMMARY_FILE)

    t0 = time.time()
    trainer, info = build_trainer(cfg, files, out_dir, quiet=quiet, no_eval=no_eval)
    make_output_dir(out_dir)
    main = trainer.accelerator.is_main_process
    mixture = info.get("mixture")
    if mixture is not None:
        files = DataFiles(out_dir / MIXTURE_FILE, None, "mixture")
        if main:
            atomic_write_json(files.train, mixture)
    if main:
        what = (f"{files.train}" if mixture is None else "a mixture of " + ", ".join(
            f"{s['name']} ({s['drawn']})" for s in mixture["sources"]))
        log(f"fine-tuning {cfg.model} ({'LoRA' if cfg.lora.enabled else 'full'}, {info['precision']}, "
            f"{info['device']}) on {info['train_examples']} examples from {what}"
            + (f", eval on {info['eval_examples']} from {files.eval}" if files.eval else ""))
    eval_before, by_before = eval_losses(trainer)
    result = trainer.train(resume_from_checkpoint=last_ckpt)
    eval_after, by_after = eval_losses(trainer)

    kind = save_trained(trainer, cfg.lora, out_dir, info["model_path"])

    train_losses, eval_losses_logged = _losses(trainer.state.log_history)
    summary = {
        **summary_head(cfg, info, files, kind),
        "train_examples": info["train_examples"],
        "eval_examples": info["eval_examples"],
        "train_loss_first": train_losses[0] if train_losses else None,
        "train_loss_last": train_losses[-1] if train_losses else None,
        "train_loss_mean": float(result.training_loss) if result.training_loss is not None else None,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "eval_losses": eval_losses_logged,
        **({"mixture": mixture, "eval_loss_by_source": {k: [by_before[k], by_after[k]] for k in by_after}}
           if mixture is not None else {}),
        **run_summary(trainer, cfg, info, last_ckpt, t0),
    }
    finish_output(trainer, out_dir, summary, SUMMARY_FILE, cfg.keep_checkpoints)
    return summary


def format_summary(s: dict[str, Any], out_dir: str | Path) -> str:
    m = fmt_metric
    rows = [
        ("examples", f"train {s['train_examples']}, eval {s['eval_examples']}"),
        ("steps", f"{s['steps']} ({s['epochs']} epochs, {s['runtime_s']} s)"),
        ("train loss", f"{m(s['train_loss_first'])} -> {m(s['train_loss_last'])} (first -> last logged)"),
    ]
    if s["eval_loss_before"] is not None:
        rows.append(("eval loss", f"{m(s['eval_loss_before'])} -> {m(s['eval_loss_after'])} (before -> after"
                                  + (", mean of the sources)" if s.get("eval_loss_by_source") else ")")))
    for name, (before, after) in (s.get("eval_loss_by_source") or {}).items():
        rows.append((f"  {name}", f"{m(before)} -> {m(after)}"))
    if s.get("mixture"):
        rows.append(("mixture", ", ".join(f"{x['name']} {x['drawn']} ({100 * x['drawn_share']:.0f}%, weight "
                                          f"{x['weight']:g})" for x in s["mixture"]["sources"])))
    return format_summary_rows(rows, s["kind"], out_dir)
