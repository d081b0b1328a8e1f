"""`selfinstruct dpo --iterations N`: rounds of responses -> judge -> pairs -> DPO, each with the newest
model as the policy (the loop of Self-Rewarding Language Models, Yuan et al. 2024).

Iteration 1 trains the given policy on DATA's pairs, as a plain `dpo` does. Iteration i > 1 first makes
new pairs with DATA's own preference pipeline (the config its run.json records), answered by the model
of iteration i - 1, then trains that model on them. Everything of iteration i lives in OUT/iteration-i/
(`preference/`, a run directory, and `model/`); a re-run redoes nothing finished: the preference run
resumes as any run does, a trained model is reused, and an interrupted DPO goes on from its checkpoint."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import yaml

from ..io.errors import UserError
from ..io.jsonl import atomic_write_json, atomic_write_text
from ..run.reader import load_json, read_run_info
from ..generate.config import load_config
from ..generate.pipeline import run_pipeline
from ..train.config import DpoConfig
from ..train.dpo import SUMMARY_FILE, run_dpo
from ..train.output import CHECKPOINT_DIR, fmt_metric

ITERATION = "iteration-{i}"
SUMMARY = "iterations.json"


def preference_config(data: Path) -> dict[str, Any]:
    """The pipeline config DATA's preference run was made with (run.json)."""
    recorded = read_run_info(data).get("config") if data.is_dir() else None
    if not recorded or "responses" not in (recorded.get("stages") or []):
        raise UserError("--iterations needs DATA to be a preference run directory (its run.json names the "
                        "responses stage that makes the next iteration's pairs)", path=data)
    return recorded


def run_iterations(cfg: DpoConfig, data: str | Path, out: str | Path, iterations: int, *, no_eval: bool = False,
                   quiet: bool = False, log: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    data, out = Path(data), Path(out)
    recorded = preference_config(data)
    policy, summaries = cfg.model, []
    for i in range(1, iterations + 1):
        here = out / ITERATION.format(i=i)
        pairs = data
        if i > 1:  # new pairs, answered by the newest model
            pairs = here / "preference"
            conf = {**recorded, "responses": {**recorded["responses"], "model": str(policy)}}
            conf_file = here / "preference.yaml"
            here.mkdir(parents=True, exist_ok=True)
            atomic_write_text(conf_file, yaml.safe_dump(conf, sort_keys=False))
            log(f"iteration {i}: pairs from {policy} -> {pairs}")
            run_pipeline(load_config(conf_file), pairs, quiet=quiet)
        model = here / "model"
        if (model / SUMMARY_FILE).is_file():
            log(f"iteration {i}: trained before, reused ({model})")
            summary = load_json(model / SUMMARY_FILE)
        else:
            resume = any((model / CHECKPOINT_DIR).glob("checkpoint-*"))
            log(f"iteration {i}: DPO of {policy} on {pairs}" + (", from its last checkpoint" if resume else ""))
            summary = run_dpo(dataclasses.replace(cfg, model=str(policy)), pairs, model, no_eval=no_eval,
                              resume=resume, overwrite=not resume, quiet=quiet, log=log)
        summaries.append({"iteration": i, "policy": str(policy), "pairs": str(pairs), "model": str(model),
                          **{k: summary.get(k) for k in ("train_pairs", "eval_pairs", "steps", "eval_before",
                                                         "eval_after")}})
        policy = model
    atomic_write_json(out / SUMMARY, summaries)
    return summaries


def format_iterations(rows: list[dict[str, Any]]) -> str:
    lines = ["iteration  pairs (train/eval)  steps  held-out reward accuracy (before -> after)  model"]
    for r in rows:
        before, after = r.get("eval_before") or {}, r.get("eval_after") or {}
        lines.append(f"{r['iteration']:>9}  {r['train_pairs']:>8}/{r['eval_pairs']:<9}  {r['steps']:>5}  "
                     f"{fmt_metric(before.get('reward_accuracy')):>20} -> {fmt_metric(after.get('reward_accuracy')):<19}"
                     f"  {r['model']}")
    return "\n".join(lines)
