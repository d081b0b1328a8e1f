"""`selfinstruct dpo`: direct preference optimisation with TRL's DPOTrainer on a run's preference pairs
(`train.preference.jsonl`, held-out `eval.preference.jsonl`), from a policy that is usually the model
`finetune` made.

The reference model is the policy as loaded: a copy of it for a full fine-tune, the policy with its new
adapter switched off for LoRA (TRL's own way). A policy given as a LoRA adapter folder (`finetune
--no-merge`) is merged into its base first, so that the reference is the fine-tuned model, not its base.
The result is saved the way `finetune` saves (train/output.py): a full model, LoRA merged, or an adapter
folder, with the tokenizer, loadable by vLLM and transformers; checkpoints in OUT/checkpoints, --resume.

Measured before and after training on the held-out pairs: the DPO loss and the reward accuracy (how often
the implicit reward, beta * log(pi/pi_ref), ranks the chosen answer above the rejected one). Before
training the policy is the reference, so every reward is 0: the accuracy is 0.0 and the loss ln 2 by
construction; only the values after training say something."""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable

from ..io.errors import UserError
from .config import DpoConfig
from .loading import is_adapter_dir, quiet_libraries, resolve_any_model
from .output import (finish_output, fmt_metric, format_summary_rows, load_policy, lora_config, make_output_dir,
                     prepare_output, run_summary, save_trained, summary_head, trainer_config)
from ..io.jsonl import atomic_write_json
from .mixture import MIXTURE_FILE, check_one_kind, load_pair_parts, mix
from .pairs import PairFiles, load_pairs, resolve_pairs

SUMMARY_FILE = "selfinstruct-dpo.json"
EVAL_KEYS = {"loss": "eval_loss", "reward_accuracy": "eval_rewards/accuracies", "reward_margin": "eval_rewards/margins"}


def build_dpo_trainer(cfg: DpoConfig, files: PairFiles | None, out_dir: str | Path, *, quiet: bool = False,
                      no_eval: bool = False):
    """Load pairs (`files`, or None: the mixture `cfg.data`), policy, reference and tokenizer; return
    (trainer, info). Raises UserError on bad input."""
    out_dir = Path(out_dir)
    mixture = None
    if files is None:  # the mixture of cfg.data: pairs drawn by weight, every source's held-out pairs
        parts = load_pair_parts(cfg.data, no_eval)
        train_rows, mixture = mix(parts, cfg.mixture_size, cfg.seed)
        eval_rows = [r for p in parts for r in p.eval]
    else:
        train_rows = load_pairs(files.train)
        if not train_rows:
            raise UserError("no preference pairs (the file is empty)", path=files.train)
        eval_rows = load_pairs(files.eval) if files.eval is not None else []

    model_path = resolve_any_model(cfg.model)
    quiet_libraries()
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    cuda, precision, dtype, tok, model = load_policy(cfg, model_path)
    if is_adapter_dir(model_path):
        # the SFT adapter is part of the policy, and of the reference; PEFT loaded the base frozen: the
        # merged weights are all trainable again (with --lora, the new adapter freezes them itself)
        model = model.merge_and_unload().requires_grad_(True)
        if cfg.gradient_checkpointing:
            model.config.use_cache = False
    peft_config = lora_config(cfg.lora)
    # Full training: the reference is a frozen copy of the policy as loaded (TRL would otherwise reload it
    # from config._name_or_path, which for a merged adapter is the base). LoRA: the adapter switched off.
    ref_model = None if peft_config is not None else copy.deepcopy(model).eval().requires_grad_(False)

    def as_dataset(rows):
        return Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])

    eval_ds = as_dataset(eval_rows) if eval_rows else None
    dpo_args = trainer_config(DPOConfig, cfg, out_dir, cuda=cuda, precision=precision, has_eval=eval_ds is not None,
                              quiet=quiet, user=cfg.dpo_args, extra=dict(beta=cfg.beta, loss_type=list(cfg.loss_type)))
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=dpo_args, train_dataset=as_dataset(train_rows),
                         eval_dataset=eval_ds, processing_class=tok, peft_config=peft_config)
    info = {"model_path": model_path, "precision": precision, "model_dtype": str(dtype).replace("torch.", ""),
            "train_pairs": len(train_rows), "eval_pairs": len(eval_rows), "device": "cuda" if cuda else "cpu",
            "mixture": mixture}
    return trainer, info


def eval_metrics(trainer) -> dict[str, float]:
    """DPO loss, reward accuracy and margin on the eval pairs."""
    m = trainer.evaluate()
    return {k: float(m[v]) for k, v in EVAL_KEYS.items() if v in m}


def run_dpo(cfg: DpoConfig, data: str | Path, out_dir: str | Path, *, eval_data: str | Path | None = None,
            no_eval: bool = False, resume: bool = False, overwrite: bool = False, quiet: bool = False,
            log: Callable[[str], Any] = print) -> dict[str, Any]:
    """DPO of cfg.model on DATA's pairs, saved to out_dir. Returns the summary (also OUT/selfinstruct-dpo.json)."""
    out_dir = Path(out_dir)
    check_one_kind(data, cfg.data, "dpo")
    files = resolve_pairs(data, eval_data, no_eval) if data is not None else None
    last_ckpt = prepare_output(out_dir, resume=resume, overwrite=overwrite, summary_file=SUMMARY_FILE)
    t0 = time.time()
    trainer, info = build_dpo_trainer(cfg, files, out_dir, quiet=quiet, no_eval=no_eval)
    make_output_dir(out_dir)
    if info["mixture"] is not None:
        files = PairFiles(out_dir / MIXTURE_FILE, None)
        if trainer.accelerator.is_main_process:
            atomic_write_json(files.train, info["mixture"])
    if trainer.accelerator.is_main_process:
        log(f"DPO of {cfg.model} ({'LoRA' if cfg.lora.enabled else 'full'}, beta {cfg.beta}, {info['precision']}, "
            f"{info['device']}) on {info['train_pairs']} pairs from {files.train}"
            + (f", eval on {info['eval_pairs']} from {files.eval}" if files.eval else ""))
    has_eval = trainer.eval_dataset is not None
    before = eval_metrics(trainer) if has_eval else {}
    result = trainer.train(resume_from_checkpoint=last_ckpt)
    after = eval_metrics(trainer) if has_eval else {}
    kind = save_trained(trainer, cfg.lora, out_dir, info["model_path"])
    train_losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        **summary_head(cfg, info, files, kind),
        "train_pairs": info["train_pairs"], "eval_pairs": info["eval_pairs"],
        "train_loss_first": train_losses[0] if train_losses else None,
        "train_loss_last": train_losses[-1] if train_losses else None,
        "train_loss_mean": float(result.training_loss) if result.training_loss is not None else None,
        "eval_before": before, "eval_after": after, **({"mixture": info["mixture"]} if info["mixture"] else {}),
        **run_summary(trainer, cfg, info, last_ckpt, t0),
    }
    finish_output(trainer, out_dir, summary, SUMMARY_FILE, cfg.keep_checkpoints)
    return summary


def format_dpo_summary(s: dict[str, Any], out_dir: str | Path) -> str:
    rows = [("pairs", f"train {s['train_pairs']}, eval {s['eval_pairs']}"),
            ("steps", f"{s['steps']} ({s['epochs']} epochs, {s['runtime_s']} s)"),
            ("train loss", f"{fmt_metric(s['train_loss_first'])} -> {fmt_metric(s['train_loss_last'])} (first -> last logged)")]
    b, a = s["eval_before"], s["eval_after"]
    for key, label in (("loss", "eval loss"), ("reward_accuracy", "reward accuracy"), ("reward_margin", "reward margin")):
        if key in a:
            rows.append((label, f"{fmt_metric(b.get(key))} -> {fmt_metric(a.get(key))} (before -> after, held-out pairs)"))
    return format_summary_rows(rows, s["kind"], out_dir)
