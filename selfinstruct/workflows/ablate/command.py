"""`selfinstruct ablate`: which selection of a run trains the better model.

    plan (one shared held-out split; N examples per selector)  ->  one fine-tune per selector, the same
    settings and the same number of optimizer steps  ->  one `evaluate` of the base and every selector on
    the same prompts  ->  a table with 95% intervals, the decision rule and its verdict, an HTML chart.

The decision rule is fixed before anything runs and printed first: the judge's selection wins on a suite
only if its paired interval against random *and* against longest lies above 0 on the suite's primary
metric. A finished fine-tune whose plan is unchanged is reused on a re-run (OUT/ablate.json records the
plan), so an interrupted ablation resumes at the next model."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
from pathlib import Path
from typing import Any, Callable

from ...evals.render import format_table
from ...evals.run import run_evaluate
from ...io.console import library_output_to
from ...io.errors import UserError
from ...io.jsonl import atomic_write_json
from ...io.settings import to_dict
from ...run.reader import load_json
from ...train.config import FinetuneConfig
from ...train.finetune import run_finetune
from ...train.loading import SUMMARY_FILE
from ...train.output import CHECKPOINT_DIR
from .plan import HELD_OUT, Plan, make_plan, write_plan_data

PLAN_FILE = "ablate.json"
MODEL_DIR = "model"
PRIMARY = {"ifbench": "prompt_strict", "constraints": "prompt_strict", "pairwise": "win_rate", "reference": "rouge_l",
           "knowledge": "contains", "knowledge_judge": "judge_correct"}
CHALLENGER, BASELINES = "judge", ("random", "longest")
RULE = ("decision rule (fixed before the run): the judge selection wins on a suite only if the paired 95% "
        "interval of judge - random and of judge - longest both lie above 0 on the suite's primary metric ("
        + ", ".join(f"{s}: {m}" for s, m in PRIMARY.items()) + ")")


def optimizer_steps(cfg: FinetuneConfig, n: int) -> int:
    """The same for every selector: --max-steps, else the epochs over N examples."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * n / (cfg.batch_size * cfg.grad_accum)))


def plan_record(plan: Plan, cfg: FinetuneConfig) -> dict[str, Any]:
    """What OUT/ablate.json holds: the plan and the training settings (not `source`: the same YAML file may
    be named by another path), compared on a re-run to reuse the finished fine-tunes."""
    return {**plan.describe(), "finetune": to_dict(cfg)}


def _check_plan(out: Path, wanted: dict[str, Any], overwrite: bool) -> None:
    path = out / PLAN_FILE
    if not path.exists():
        return
    old = load_json(path)
    if old == wanted:
        return
    if not overwrite:
        changed = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
        raise UserError(f"holds an ablation with another plan (differs in: {', '.join(changed)}); pass "
                        "--overwrite to replace it", path=out)
    for d in [out / k for k in (old.get("selections") or {})] + [out / HELD_OUT]:
        shutil.rmtree(d, ignore_errors=True)


def run_ablate(run_dir: Path, out: Path, cfg: FinetuneConfig, *, selectors: list[str], fraction: float | None = None,
               n: int | None = None, suites: tuple[str, ...] = ("ifbench", "constraints", "pairwise"),
               limit: int | None = None, engine: str = "auto", judge: str | None = None,
               judge_urls: tuple[str, ...] = (), max_new_tokens: int | None = None, resamples: int = 2000,
               overwrite: bool = False, quiet: bool = False, log: Callable[[str], Any] = print) -> dict[str, Any]:
    plan = make_plan(run_dir, selectors, fraction=fraction, n=n)
    steps = optimizer_steps(cfg, plan.n)
    cfg = dataclasses.replace(cfg, max_steps=steps)
    wanted = plan_record(plan, cfg)
    _check_plan(out, wanted, overwrite)
    log(RULE)
    log(f"pool: {plan.pool_records} records of stage {plan.pool_stage}; held out: {len(plan.eval_ids)} records "
        f"({len(plan.eval_examples)} examples); train pool: {plan.train_examples} examples; each selection: "
        f"{plan.n} examples; {steps} optimizer steps each")
    dirs = write_plan_data(plan, out)
    atomic_write_json(out / PLAN_FILE, wanted)
    # -q: what torch, transformers and vLLM print goes to OUT/ablate.log; our notes stay on the terminal
    with library_output_to(out / "ablate.log") if quiet else contextlib.nullcontext():
        return _train_and_evaluate(plan, dirs, out, cfg, steps, suites=suites, limit=limit, engine=engine,
                                   judge=judge, judge_urls=judge_urls, max_new_tokens=max_new_tokens,
                                   resamples=resamples, quiet=quiet, log=log)


def _train_and_evaluate(plan: Plan, dirs: dict[str, Path], out: Path, cfg: FinetuneConfig, steps: int, *,
                        suites, limit, engine, judge, judge_urls, max_new_tokens, resamples, quiet, log
                        ) -> dict[str, Any]:

    models = {}
    for name, d in dirs.items():
        models[name] = d / MODEL_DIR
        if (models[name] / SUMMARY_FILE).is_file():
            log(f"{name}: fine-tuned before with this plan, reused ({models[name]})")
            continue
        # a fine-tune interrupted with this plan goes on from its last checkpoint
        resume = any((models[name] / CHECKPOINT_DIR).glob("checkpoint-*"))
        log(f"{name}: fine-tuning on {len(plan.selections[name].examples)} examples ({plan.selections[name].rule})"
            + (", from its last checkpoint" if resume else ""))
        run_finetune(cfg, d, models[name], resume=resume, overwrite=not resume, quiet=quiet, log=log)
    names = list(models)
    compare = tuple((CHALLENGER, b) for b in BASELINES if CHALLENGER in names and b in names)
    summary = run_evaluate(cfg.model, str(models[names[0]]), out / HELD_OUT, out / "evaluation.jsonl",
                           suites=suites, models=tuple(str(models[k]) for k in names[1:]), labels=tuple(names),
                           compare=compare, judge=judge, judge_urls=judge_urls, max_new_tokens=max_new_tokens,
                           limit=limit, engine=engine, loss=False, resamples=resamples, seed=cfg.seed, quiet=quiet,
                           log=log)
    result = {"plan": plan.describe(), "steps": steps, "rule": RULE, "verdicts": verdicts(summary, compare),
              "eval_loss": {k: load_json(m / SUMMARY_FILE).get("eval_loss_after") for k, m in models.items()},
              "evaluation": summary}
    atomic_write_json(out / "ablation.json", result)
    return result


def verdicts(summary: dict[str, Any], compare: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Suite -> the decision rule's verdict, in words."""
    if len(compare) < len(BASELINES):
        return {s: "no verdict: the rule needs the judge, random and longest selectors" for s in summary["suites"]}
    out = {}
    for suite, res in summary["suites"].items():
        metric = PRIMARY[suite]
        ivs = {f"{a} - {b}": res["differences"][f"{a} - {b}"][metric] for a, b in compare}
        wins = all(iv["low"] > 0 for iv in ivs.values())
        out[suite] = ("judge wins" if wins else "judge does not win") + " (" + "; ".join(
            f"{k} {100 * iv['estimate']:+.1f} [{100 * iv['low']:+.1f}, {100 * iv['high']:+.1f}]"
            for k, iv in ivs.items()) + f" on {metric}, in points)"
    return out


def format_ablation(result: dict[str, Any]) -> str:
    plan = result["plan"]
    sels = plan["selections"]
    w = max(len(k) for k in sels)
    lines = [result["rule"], "",
             f"selections ({plan['n']} examples each but `all`; {result['steps']} optimizer steps each; "
             f"{plan['eval_examples']} held-out examples shared):"]
    for k, s in sels.items():
        loss = result["eval_loss"].get(k)
        lines.append(f"  {k:<{w}}  {s['examples']:>6} examples from {s['records']:>5} records  eval loss after "
                     f"{'-' if loss is None else f'{loss:.4f}'}  ({s['rule']})")
    lines += ["", format_table(result["evaluation"]), "", "verdict:"]
    lines += [f"  {suite}: {v}" for suite, v in result["verdicts"].items()]
    lines.append(f"chart: {result['evaluation']['report']}")
    return "\n".join(lines)


def plan_only(plan: Plan) -> str:
    """For --dry-run: the selections, nothing trained."""
    return "\n".join([RULE, *(f"  {k}: {len(s.examples)} examples from {s.records} records ({s.rule})"
                              for k, s in plan.selections.items())])
