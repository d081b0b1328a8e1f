"""`selfinstruct grpo`: reinforcement learning with verifiable rewards (RLVR) by TRL's GRPOTrainer on a
run's constrained prompts (`train.constraints.jsonl`; the eval split is never trained on), from a policy
that is usually the model `finetune` or `dpo` made.

For each prompt the policy samples `num_generations` answers; each answer's reward is the share of the
prompt's constraints it follows (the strict checks of `selfinstruct.constraints`: exact at any model
size), plus the optional terms of train/rewards.py (a length cost, a judge's score); GRPO pushes up the
answers that beat their group's mean. The KL term (`beta`) holds the policy near where it started: for
full training TRL loads that reference from the policy's folder, so a LoRA adapter folder given as the
policy is first merged into its base (once, in the cache) and trained from the merged folder.

Measured before and after training on the held-out prompts (`eval.constraints.jsonl`), by TRL's own
evaluation loop (sampled answers, the same rewards): the mean constraint reward. Saved the way
`finetune` saves (train/output.py); checkpoints in OUT/checkpoints, --resume continues from the newest.
On CPU: fp32 and transformers' generate (use_vllm off); on a GPU, `--set grpo_args.use_vllm=true` needs a
vLLM TRL supports (0.22-0.31 for TRL 1.16; this project installs 0.32: README, "GRPO")."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..io.errors import UserError
from ..provenance import model_fingerprint
from .config import GrpoConfig
from .constraint_prompts import PromptFiles, load_constraint_prompts, resolve_constraint_prompts
from .loading import is_adapter_dir, merged_adapter, quiet_libraries, resolve_any_model
from .output import (finish_output, fmt_metric, format_summary_rows, load_policy, lora_config, make_output_dir,
                     prepare_output, run_summary, save_trained, summary_head, trainer_config)
from .rewards import ConstraintShare, JudgeScore, LengthCost, encode_constraints

SUMMARY_FILE = "selfinstruct-grpo.json"
REWARD_KEY = "eval_rewards/constraints/mean"


def policy_path(model: str) -> str:
    """The policy's folder; an adapter folder merged into its base first (the KL reference is read from it)."""
    path = resolve_any_model(model)
    if is_adapter_dir(path):
        return merged_adapter(path, model_fingerprint(model, path)["adapter_sha256"])
    return path


def as_dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset
    return Dataset.from_list([{"prompt": r["prompt"], "constraints": encode_constraints(r["constraints"])}
                              for r in rows])


def fitting(tok, rows: list[dict[str, Any]], max_length: int) -> tuple[list[dict[str, Any]], int]:
    """The rows whose prompt, as the chat template renders it, has at most max_length tokens; how many not."""
    def tokens(prompt) -> int:
        text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        return len(tok(text, add_special_tokens=False)["input_ids"])
    keep = [r for r in rows if tokens(r["prompt"]) <= max_length]
    return keep, len(rows) - len(keep)


def build_grpo_trainer(cfg: GrpoConfig, files: PromptFiles, out_dir: str | Path, *, quiet: bool = False,
                       judge: Callable | None = None):
    """Load prompts, policy and tokenizer; return (trainer, info). `judge`: (prompts, answers) -> scores in
    [0, 1] or None, weighted by cfg.judge_weight. Raises UserError on bad input."""
    train_rows = load_constraint_prompts(files.train)
    if not train_rows:
        raise UserError("no constrained prompts (the file is empty)", path=files.train)
    eval_rows = load_constraint_prompts(files.eval) if files.eval is not None else []
    if cfg.judge_weight and judge is None:
        raise UserError("judge_weight is set but no judge is given (--judge-url)")
    model_path = policy_path(cfg.model)
    quiet_libraries()
    from trl import GRPOConfig as TrlGrpoConfig
    from trl import GRPOTrainer

    cuda, precision, dtype, tok, model = load_policy(cfg, model_path)
    train_rows, too_long = fitting(tok, train_rows, cfg.max_length)
    if not train_rows:
        raise UserError(f"every prompt is longer than max_length ({cfg.max_length} tokens)", path=files.train)
    eval_rows, _ = fitting(tok, eval_rows, cfg.max_length)
    rewards: list[Any] = [ConstraintShare()]
    weights = [1.0]
    if cfg.length_penalty:
        rewards.append(LengthCost(cfg.max_completion_length))
        weights.append(cfg.length_penalty)
    if cfg.judge_weight:
        rewards.append(JudgeScore(judge))
        weights.append(cfg.judge_weight)
    eval_ds = as_dataset(eval_rows) if eval_rows else None
    extra = dict(num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
                 temperature=cfg.temperature, beta=cfg.beta, reward_weights=weights, use_vllm=False,
                 use_cpu=not cuda)
    args = trainer_config(TrlGrpoConfig, cfg, out_dir, cuda=cuda, precision=precision, has_eval=eval_ds is not None,
                          quiet=quiet, user=cfg.grpo_args, extra=extra)
    trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=args, train_dataset=as_dataset(train_rows),
                          eval_dataset=eval_ds, processing_class=tok, peft_config=lora_config(cfg.lora))
    info = {"model_path": model_path, "precision": precision, "model_dtype": str(dtype).replace("torch.", ""),
            "train_prompts": len(train_rows), "eval_prompts": len(eval_rows), "device": "cuda" if cuda else "cpu",
            "prompts_too_long": too_long, "rewards": {f.__name__: w for f, w in zip(rewards, weights)}}
    return trainer, info


def eval_reward(trainer) -> float | None:
    """The mean constraint reward of sampled answers to the held-out prompts."""
    m = trainer.evaluate()
    return float(m[REWARD_KEY]) if REWARD_KEY in m else None


def run_grpo(cfg: GrpoConfig, data: str | Path, out_dir: str | Path, *, eval_data: str | Path | None = None,
             no_eval: bool = False, resume: bool = False, overwrite: bool = False, quiet: bool = False,
             judge: Callable | None = None, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """GRPO of cfg.model on DATA's constrained prompts, saved to out_dir. Returns the summary (also
    OUT/selfinstruct-grpo.json)."""
    out_dir = Path(out_dir)
    files = resolve_constraint_prompts(data, eval_data, no_eval)
    last_ckpt = prepare_output(out_dir, resume=resume, overwrite=overwrite, summary_file=SUMMARY_FILE)
    t0 = time.time()
    trainer, info = build_grpo_trainer(cfg, files, out_dir, quiet=quiet, judge=judge)
    make_output_dir(out_dir)
    if trainer.accelerator.is_main_process:
        log(f"GRPO of {cfg.model} ({'LoRA' if cfg.lora.enabled else 'full'}, {cfg.num_generations} answers a prompt, "
            f"beta {cfg.beta}, {info['precision']}, {info['device']}) on {info['train_prompts']} prompts from "
            f"{files.train}" + (f", eval on {info['eval_prompts']} from {files.eval}" if files.eval else ""))
    has_eval = trainer.eval_dataset is not None
    before = eval_reward(trainer) if has_eval and last_ckpt is None else None
    trainer.train(resume_from_checkpoint=last_ckpt)
    after = eval_reward(trainer) if has_eval else None
    kind = save_trained(trainer, cfg.lora, out_dir, info["model_path"])
    history = [h for h in trainer.state.log_history if "rewards/constraints/mean" in h]
    summary = {
        **summary_head(cfg, info, files, kind),
        "train_prompts": info["train_prompts"], "eval_prompts": info["eval_prompts"],
        "prompts_too_long": info["prompts_too_long"], "rewards": info["rewards"],
        "train_reward_first": history[0]["rewards/constraints/mean"] if history else None,
        "train_reward_last": history[-1]["rewards/constraints/mean"] if history else None,
        "eval_reward_before": before, "eval_reward_after": after, **run_summary(trainer, cfg, info, last_ckpt, t0),
    }
    finish_output(trainer, out_dir, summary, SUMMARY_FILE, cfg.keep_checkpoints)
    return summary


def format_grpo_summary(s: dict[str, Any], out_dir: str | Path) -> str:
    rows = [("prompts", f"train {s['train_prompts']}, eval {s['eval_prompts']}"),
            ("steps", f"{s['steps']} ({s['epochs']} epochs, {s['runtime_s']} s)"),
            ("rewards", ", ".join(f"{k} x{w:g}" for k, w in s["rewards"].items())),
            ("train reward", f"{fmt_metric(s['train_reward_first'])} -> {fmt_metric(s['train_reward_last'])} "
                             "(constraint share, first -> last logged)")]
    if s["eval_reward_after"] is not None:
        rows.append(("eval reward", f"{fmt_metric(s['eval_reward_before'])} -> {fmt_metric(s['eval_reward_after'])} "
                                    "(before -> after, held-out prompts)"))
    return format_summary_rows(rows, s["kind"], out_dir)
