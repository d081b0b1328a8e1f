"""`selfinstruct evaluate`: the chosen suites for the base, the tuned and any other models.

Every suite's prompts are answered greedily with one engine per model (closed, and verified gone,
before the next starts); a judge model then reads the answers of judged suites (pairwise); the eval
loss of the `reference` suite is a transformers forward pass after all engines are gone. Output, next
to OUT (default TUNED/evaluation.jsonl): OUT (the `reference` side by side, as before), OUT's stem +
`.SUITE.jsonl` for the other suites, `.summary.json`, and `.report.html` (a chart per suite)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable

from ..io.console import library_output_to
from ..io.errors import UserError
from ..io.jsonl import atomic_write_json, atomic_write_jsonl
from ..train.data import resolve_eval_data
from ..train.evaluate import eval_loss
from ..train.loading import SUMMARY_FILE, free_memory, load_for_inference, recorded_base_model, resolve_any_model
from .generation import ENGINES, answer_all
from .pairwise import JUDGE_MAX_TOKENS
from .suites import SUITES, Item, Options, SuiteResult


def judge_on_server(judge: str, urls: tuple[str, ...], prompts: list[list[dict]], log) -> list[str]:
    """Verdicts from an OpenAI-compatible server (a judge too big for this machine), greedy. A failed
    request is an error: a verdict is never made up."""
    from ..backends.base import Request
    from ..backends.openai_server import OpenAIBackend, OpenAIOptions

    log(f"judge ({judge}): {len(prompts)} verdicts from {len(urls)} server(s)")
    backend = OpenAIBackend(judge, OpenAIOptions(base_urls=list(urls)))
    try:
        got = backend.generate([Request(p, max_tokens=JUDGE_MAX_TOKENS, temperature=0.0, seed=0) for p in prompts])
    finally:
        backend.close()
    failed = [c.error for c in got if c.error]
    if failed:
        raise UserError(f"judge: {len(failed)} request(s) failed (last: {failed[-1][:200]}); re-run when the "
                        "server answers")
    return [c.text for c in got]


def summary_path(out: Path) -> Path:
    stem = out.name[:-len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(stem + ".summary.json")


def suite_path(out: Path, suite: str) -> Path:
    return out if suite == "reference" else summary_path(out).with_name(
        summary_path(out).name.replace(".summary.json", f".{suite}.jsonl"))


def run_evaluate(base: str | None, tuned: str, data: str | Path | None, out: str | Path | None = None, *,
                 suites: tuple[str, ...] = ("reference",), models: tuple[str, ...] = (), judge: str | None = None,
                 judge_urls: tuple[str, ...] = (), labels: tuple[str, ...] | None = None,
                 compare: tuple[tuple[str, str], ...] = (),
                 max_new_tokens: int | None = None, limit: int | None = None,
                 limits: dict[str, int | None] | None = None, questions: str | Path | None = None, engine: str = "auto",
                 loss: bool = True, max_length: int = 1024, batch_size: int = 8, seed: int = 0,
                 resamples: int = 2000, quiet: bool = False, log: Callable[[str], Any] = print) -> dict[str, Any]:
    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    for name, value, low in (("--max-new-tokens", max_new_tokens, 1), ("--max-length", max_length, 8),
                             ("--limit", limit, 1), ("--batch-size", batch_size, 1), ("--resamples", resamples, 100)):
        if value is not None and value < low:
            raise UserError(f"{name} must be >= {low}")
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise UserError(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}")
    if base is None:
        base = recorded_base_model(tuned)
        if base is None:
            raise UserError(f"--base is required: {tuned} has no {SUMMARY_FILE} naming its base model")
    labels = labels or ("tuned", *(f"model{i + 1}" for i in range(len(models))))
    if len(labels) != 1 + len(models) or len(set(labels)) != len(labels) or "base" in labels:
        raise UserError(f"labels {list(labels)}: one per tuned/other model, distinct, not 'base'")
    names = {"base": base, **dict(zip(labels, (tuned, *models)))}
    paths = {label: resolve_any_model(n) for label, n in names.items()}
    opts = Options(data=Path(data) if data is not None else None, limit=limit, seed=seed, resamples=resamples,
                   compare=compare, limits=dict(limits or {}),
                   questions=Path(questions) if questions is not None else None)
    chosen = [SUITES[s]() for s in dict.fromkeys(suites)]
    items: dict[str, list[Item]] = {s.name: s.items(opts) for s in chosen}
    out = Path(out) if out is not None else (Path(tuned) / "evaluation.jsonl" if Path(tuned).is_dir()
                                             else Path("evaluation.jsonl"))

    out.parent.mkdir(parents=True, exist_ok=True)
    # -q: what vLLM and torch print goes to a log next to the output (our notes stay on the terminal)
    with library_output_to(summary_path(out).with_name(summary_path(out).name.replace(".summary.json", ".log"))) \
            if quiet else contextlib.nullcontext():
        summary = _evaluate(chosen, items, names, paths, opts, out, judge=judge or base, judge_urls=judge_urls,
                            max_new_tokens=max_new_tokens,
                            engine=engine, loss=loss, max_length=max_length, batch_size=batch_size, quiet=quiet,
                            log=log, data=data)
    return summary


def _evaluate(chosen, items: dict[str, list[Item]], names: dict[str, str], paths: dict[str, str], opts: Options,
              out: Path, *, judge: str, judge_urls: tuple[str, ...], max_new_tokens: int | None, engine: str, loss: bool, max_length: int,
              batch_size: int, quiet: bool, log: Callable[[str], Any], data) -> dict[str, Any]:
    # 1) answers: all suites' prompts in one pass per model, each prompt with its suite's budget
    prompts = [it.messages for s in chosen for it in items[s.name]]
    budgets = [max_new_tokens or s.max_new_tokens for s in chosen for _ in items[s.name]]
    # a prompt that two suites ask with the same budget (knowledge and knowledge_judge) is answered once
    keys = [json.dumps([p, b], sort_keys=True) for p, b in zip(prompts, budgets)]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    slot = {k: j for j, k in enumerate(first)}
    answers: dict[str, dict[str, list]] = {s.name: {} for s in chosen}
    used: dict[str, str] = {}
    for label, name in names.items():
        distinct, used[label] = answer_all(paths[label], f"{label} ({name})", [prompts[i] for i in first.values()],
                                           [budgets[i] for i in first.values()], engine=engine, max_length=max_length,
                                           batch_size=batch_size, quiet=quiet, log=log)
        got = [distinct[slot[k]] for k in keys]
        start = 0
        for s in chosen:
            answers[s.name][label] = got[start:start + len(items[s.name])]
            start += len(items[s.name])
    # 2) the judge reads the answers of judged suites
    verdicts: dict[str, list[str]] = {}
    judge_engine = None
    for s in chosen:
        if s.judged:
            jp = s.judge_prompts(items[s.name], answers[s.name])
            if judge_urls:
                verdicts[s.name], judge_engine = judge_on_server(judge, judge_urls, jp, log), "openai"
                continue
            got, judge_engine = answer_all(resolve_any_model(judge), f"judge ({judge})", jp,
                                           [JUDGE_MAX_TOKENS] * len(jp), engine=engine, max_length=max_length + 1024,
                                           batch_size=batch_size, quiet=quiet, log=log)
            verdicts[s.name] = [a.text for a in got]
    results: dict[str, SuiteResult] = {s.name: s.score(items[s.name], answers[s.name], opts, verdicts.get(s.name))
                                       for s in chosen}
    # 3) eval loss on the reference answers (transformers; comparable with the trainer's eval loss)
    losses: dict[str, float | None] = {label: None for label in names}
    if loss and "reference" in results:
        rows = [it.row["row"] for it in items["reference"]]
        for label in names:
            log(f"{label}: eval loss (transformers forward pass)")
            hf = load_for_inference(paths[label], names[label])
            losses[label] = eval_loss(*hf, rows, max_length=max_length, batch_size=batch_size)
            del hf
            free_memory()

    for name, res in results.items():
        atomic_write_jsonl(suite_path(out, name), res.rows)
    summary: dict[str, Any] = {
        "output": str(out), "models": {label: {"model": names[label], "engine": used[label]} for label in names},
        "judge": judge if any(s.judged for s in chosen) else None, "judge_engine": judge_engine,
        "suites": {name: {**res.to_dict(), "output": str(suite_path(out, name)), "prompts": len(items[name])}
                   for name, res in results.items()}}
    if "reference" in results:  # the shape `evaluate` always had, kept for its readers
        ref = results["reference"]
        summary.update(data=str(resolve_eval_data(data)), examples=len(items["reference"]),
                       max_new_tokens=max_new_tokens or SUITES["reference"].max_new_tokens)
        for label in names:
            summary["models"][label].update(eval_loss=losses[label], rouge_l=ref.metrics[label]["rouge_l"].estimate)
            if label not in summary:  # a label such as `judge` (ablate's) has its place in "models" only
                summary[label] = summary["models"][label]
    atomic_write_json(summary_path(out), summary)
    from .render import write_html
    summary["report"] = str(write_html(summary, summary_path(out).with_name(
        summary_path(out).name.replace(".summary.json", ".report.html"))))
    return summary

