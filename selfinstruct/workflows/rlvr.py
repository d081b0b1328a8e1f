"""`selfinstruct rlvr`: which training on a verified run's constrained prompts helps instruction following.

    the run's verified prompts (export train split)  ->  plain SFT (each prompt with its first sampled
    answer, pass or fail) and verified SFT (its verified answer): the same prompts, the same steps  ->
    DPO on the exact pairs and GRPO on the constraint checkers, each from the verified SFT model  ->  one
    `evaluate` of the base and the four models on the same prompts  ->  the rule's verdicts.

The rule is fixed before anything runs and printed first: verified SFT beats plain SFT on a suite only if
the paired 95% interval of verified - plain lies above 0 on the suite's primary metric; GRPO beats DPO
likewise. Each verdict names the smallest difference the run could have told from 0 (the interval's half
width). Besides the scores, per model: the mean answer length, the share cut off at the token limit, and
the shares of empty and of repetitive answers (short answers inflate IFBench; reward hacking shows as
empty or repetitive text). A model already trained in OUT is reused, so an interrupted run goes on."""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Callable

from ..evals.render import format_table
from ..evals.run import run_evaluate
from ..io.console import library_output_to
from ..io.errors import UserError
from ..io.formats import CONSTRAINT_PROMPTS_FILE
from ..io.jsonl import atomic_write_json, atomic_write_jsonl, iter_jsonl
from ..io.shards import read_stage_rows
from ..train.config import DpoConfig, FinetuneConfig, GrpoConfig
from ..train.dpo import SUMMARY_FILE as DPO_SUMMARY
from ..train.dpo import run_dpo
from ..train.finetune import run_finetune
from ..train.grpo import SUMMARY_FILE as GRPO_SUMMARY
from ..train.grpo import run_grpo
from ..train.loading import SUMMARY_FILE as FINETUNE_SUMMARY
from .ablate.command import PRIMARY
from .verdicts import Claim, answers_per_suite, verdict

SFT_FILE = "train.prompt_completion.jsonl"
MODELS = ("verified", "plain", "dpo", "grpo")
COMPARE = (("verified", "plain"), ("grpo", "dpo"))
RULE = ("decision rule (fixed before the run): verified SFT beats plain SFT on a suite only if the paired 95% "
        "interval of verified - plain lies above 0 on the suite's primary metric; GRPO beats DPO only if that "
        "of grpo - dpo does (" + ", ".join(f"{s}: {m}" for s, m in PRIMARY.items() if s != "reference") + ")")
SUMMARY_FILES = {"verified": FINETUNE_SUMMARY, "plain": FINETUNE_SUMMARY, "dpo": DPO_SUMMARY, "grpo": GRPO_SUMMARY}


@dataclasses.dataclass
class Settings:
    finetune: FinetuneConfig
    dpo: DpoConfig
    grpo: GrpoConfig


def training_data(run_dir: Path, out: Path) -> dict[str, Path]:
    """OUT/data/{verified,plain}/train.prompt_completion.jsonl: the export's constrained train examples
    (their verified answers) and the same prompts with the first answer `verify` sampled, pass or fail."""
    export = run_dir / "export"
    train = export / SFT_FILE
    prompts_file = export / CONSTRAINT_PROMPTS_FILE.format(split="train")
    for f in (train, prompts_file):
        if not f.is_file():
            raise UserError(f"no {f.name}: run pipelines/verified.yaml (its export writes prompt_completion and "
                            "constraints) first", path=run_dir)
    constrained = {obj["id"] for _, obj in iter_jsonl(prompts_file)}
    first = {r["id"]: r["verify"]["answers"][0] for r in read_stage_rows(run_dir / "verify")
             if r.get("verify", {}).get("answers")}
    verified, plain = [], []
    for _, row in iter_jsonl(train):
        if row["id"] in constrained and row["id"] in first:
            verified.append(row)
            plain.append({**row, "completion": [{"role": "assistant", "content": first[row["id"]]}]})
    if not verified:
        raise UserError("no verified constrained examples in the export's train split", path=train)
    dirs = {}
    for name, rows in (("verified", verified), ("plain", plain)):
        dirs[name] = out / "data" / name
        atomic_write_jsonl(dirs[name] / SFT_FILE, rows)
    return dirs


def verdicts(summary: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Suite -> comparison -> the rule's verdict in words, with the smallest detectable difference."""
    return {suite: {f"{a} vs {b}": verdict(summary, Claim(suite, a, b, +1, f"{a} beats {b}")) for a, b in COMPARE}
            for suite in summary["suites"]}


def run_rlvr(run_dir: Path, out: Path, settings: Settings, *, suites: tuple[str, ...] = ("ifbench", "constraints",
             "pairwise"), limit: int | None = 100, engine: str = "auto", judge: str | None = None,
             judge_urls: tuple[str, ...] = (), max_new_tokens: int | None = None, quiet: bool = False,
             log: Callable[[str], Any] = print) -> dict[str, Any]:
    log(RULE)
    dirs = training_data(run_dir, out)
    n = sum(1 for _ in iter_jsonl(dirs["verified"] / SFT_FILE))
    log(f"{n} constrained train prompts: plain and verified SFT, {settings.finetune.max_steps} steps each")
    models = {m: out / m for m in MODELS}
    with library_output_to(out / "rlvr.log") if quiet else contextlib.nullcontext():
        steps = {
            "verified": lambda: run_finetune(settings.finetune, dirs["verified"] / SFT_FILE, models["verified"], no_eval=True,
                                             overwrite=True, quiet=quiet, log=log),
            "plain": lambda: run_finetune(settings.finetune, dirs["plain"] / SFT_FILE, models["plain"], no_eval=True,
                                          overwrite=True, quiet=quiet, log=log),
            "dpo": lambda: run_dpo(dataclasses.replace(settings.dpo, model=str(models["verified"])), run_dir,
                                   models["dpo"], overwrite=True, quiet=quiet, log=log),
            "grpo": lambda: run_grpo(dataclasses.replace(settings.grpo, model=str(models["verified"])), run_dir,
                                     models["grpo"], overwrite=True, quiet=quiet, log=log),
        }
        for name in MODELS:
            if (models[name] / SUMMARY_FILES[name]).is_file():
                log(f"{name}: trained before, reused ({models[name]})")
                continue
            log(f"{name}: training")
            steps[name]()
        summary = run_evaluate(settings.finetune.model, str(models["verified"]), run_dir, out / "evaluation.jsonl",
                               suites=suites, models=tuple(str(models[m]) for m in MODELS[1:]), labels=MODELS,
                               compare=COMPARE, judge=judge, judge_urls=judge_urls, max_new_tokens=max_new_tokens,
                               limit=limit, engine=engine, loss=False, seed=settings.finetune.seed, quiet=quiet,
                               log=log)
    answers = answers_per_suite(summary, ("base", *MODELS))
    result = {"rule": RULE, "examples": n, "verdicts": verdicts(summary), "answers": answers, "evaluation": summary}
    atomic_write_json(out / "rlvr.json", result)
    return result


def format_rlvr(result: dict[str, Any]) -> str:
    lines = [result["rule"], "", f"{result['examples']} constrained train prompts; models: base, "
             + ", ".join(MODELS), "", format_table(result["evaluation"]), "", "answers (per suite and model):"]
    for suite, per in result["answers"].items():
        for m, s in per.items():
            cut = s["cut_off_share"]
            lines.append(f"  {suite:<11} {m:<8} mean words {s['mean_words']:6.1f}  cut off "
                         f"{'-' if cut is None else f'{100 * cut:.0f}%'}  empty {100 * s['empty_share']:.0f}%  "
                         f"repetitive {100 * s['repetitive_share']:.0f}%")
    lines += ["", "verdict:"]
    for suite, v in result["verdicts"].items():
        lines += [f"  {suite}: {text}" for text in v.values()]
    return "\n".join(lines)
