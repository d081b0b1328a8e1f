"""`selfinstruct knowledge`: the seed's claim, measured. "A model fine-tuned only on raw domain text will
gain knowledge but may lose its ability to follow instructions"; instruction-formatted examples in the
training data are what keeps it.

    a document set (default: the docstrings of named standard-library modules, corpora/stdlib_docs.py)
      -> a documents run (pipelines/documents.yaml: grounded closed-book instructions, faithful answers,
         decontaminated against the held-out questions)
      -> four fine-tunes of the same base, the same steps and batch, each a mixture (train/mixture.py):
         text (the documents as raw text), grounded (the grounded instructions), text_grounded (both),
         text_grounded_general (both + a general Self-Instruct run)
      -> one `evaluate` of the base and the four: knowledge (closed-book questions with reference spans,
         written independently of the pipeline), IFBench, and the pairwise judge on the general run's
         held-out instructions
      -> the rule's verdicts, printed after the table.

The rule is fixed before anything runs and printed first (CLAIMS): each claim holds only if the paired
95% interval lies on its side of 0. A model already trained in OUT is reused: an interrupted run goes on."""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Callable

from ..evals.knowledge import load_questions
from ..evals.render import format_table
from ..evals.run import run_evaluate
from ..corpora.stdlib_docs import corpus_digest, python_version, write_corpus
from ..io.console import library_output_to
from ..io.errors import UserError
from ..io.jsonl import atomic_write_json, atomic_write_jsonl
from ..train.config import FinetuneConfig
from ..train.finetune import run_finetune
from ..train.loading import SUMMARY_FILE
from ..train.mixture import MixtureSource
from .verdicts import Claim, answers_per_suite, verdict

MODELS = ("text", "grounded", "text_grounded", "text_grounded_general")
CLAIMS = (
    Claim("knowledge", "text", "base", +1, "raw text teaches the documents' facts"),
    Claim("knowledge", "grounded", "base", +1, "grounded closed-book instructions teach them"),
    Claim("ifbench", "text", "base", -1, "raw text alone costs instruction following"),
    Claim("ifbench", "text_grounded", "text", +1, "adding grounded instructions to the raw text keeps it"),
    Claim("ifbench", "text_grounded_general", "text", +1, "adding them and general instructions keeps it"),
    Claim("pairwise", "text_grounded_general", "text", +1, "... as the pairwise judge sees it"),
)
RULE = ("decision rule (fixed before the run): a claim holds only if the paired 95% interval of the difference "
        "lies entirely on its side of 0, on the suite's primary metric (knowledge: contains; ifbench: "
        "prompt_strict; pairwise: win rate against the base). Claims: "
        + "; ".join(f"{c.says} ({c.key} {'>' if c.sign > 0 else '<'} 0 on {c.suite})" for c in CLAIMS))
# the documents run's size on a CPU: bigger chunks (sections merged up to half the budget), two instructions each
DOCUMENTS_SETS = ("documents.max_tokens=512", "documents.min_tokens=256", "grounded.per_chunk=2")
DEFAULT_QUESTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "stdlib_docs" / "questions.jsonl"


@dataclasses.dataclass
class Plan:
    general: Path  # a general Self-Instruct run (make generate)
    documents_config: Path  # pipelines/documents.yaml
    finetune: FinetuneConfig  # the shared settings (max_steps, batch_size, ...): each model its own mixture
    docs: Path | None = None  # the documents (None: the standard-library docstrings, written to OUT/docs)
    questions: Path = DEFAULT_QUESTIONS
    documents_sets: tuple[str, ...] = ()  # --set items for the documents run


def mixtures(docs: Path, docs_run: Path, general: Path) -> dict[str, list[MixtureSource]]:
    text = MixtureSource(text=str(docs), name="text")
    grounded = MixtureSource(run=str(docs_run), name="grounded")
    return {"text": [text], "grounded": [grounded], "text_grounded": [text, grounded],
            "text_grounded_general": [text, grounded, MixtureSource(run=str(general), name="general")]}


def documents_run(plan: Plan, docs: Path, out: Path, quiet: bool, log) -> Path:
    """The grounded instructions, decontaminated against the questions (as `prompt` rows)."""
    from ..generate.config import load_config
    from ..generate.pipeline import run_pipeline
    prompts = out / "questions.prompts.jsonl"
    atomic_write_jsonl(prompts, [{"prompt": q["question"]} for q in load_questions(plan.questions)])
    cfg = load_config(plan.documents_config, sets=[
        f"documents.path={docs}", "documents.private=false", f"decontaminate.benchmarks=[{prompts}]",
        "stages=[documents, grounded, answer, faithfulness, decontaminate, export]", *plan.documents_sets])
    run = out / "docs-run"
    log(f"documents run: {run}")
    run_pipeline(cfg, run, quiet=quiet)
    return run


def run_knowledge(plan: Plan, out: Path, *, limit: int | None = 100, engine: str = "auto", judge: str | None = None,
                  judge_urls: tuple[str, ...] = (), max_new_tokens: int | None = None, quiet: bool = False,
                  log: Callable[[str], Any] = print) -> dict[str, Any]:
    log(RULE)
    if not (plan.general / "export").is_dir():
        raise UserError("no general instruction run here (its export/): run `make generate` first, or name one "
                        "with --general", path=plan.general)
    out.mkdir(parents=True, exist_ok=True)
    corpus: dict[str, Any] = {"docs": str(plan.docs)} if plan.docs else {}
    docs = plan.docs
    if docs is None:
        files = write_corpus(out / "docs")
        docs = out / "docs"
        corpus = {"docs": "the docstrings of Python's standard library (PSF License)", "python": python_version(),
                  "files": len(files), "sha256": corpus_digest(files)}
    log(f"documents: {corpus}")
    cfg = plan.finetune
    size = (cfg.max_steps or 1) * cfg.batch_size * cfg.grad_accum
    models = {m: out / m for m in MODELS}
    with library_output_to(out / "knowledge.log") if quiet else contextlib.nullcontext():
        run = documents_run(plan, docs, out, quiet, log)
        for name, sources in mixtures(docs, run, plan.general).items():
            if (models[name] / SUMMARY_FILE).is_file():
                log(f"{name}: trained before, reused ({models[name]})")
                continue
            log(f"{name}: training on {' + '.join(s.name for s in sources)} ({cfg.max_steps} steps)")
            run_finetune(dataclasses.replace(cfg, data=sources, mixture_size=size), None, models[name],
                         overwrite=True, quiet=quiet, log=log)
        summary = run_evaluate(cfg.model, str(models[MODELS[0]]), plan.general, out / "evaluation.jsonl",
                               # with a judge that can judge, it also says which knowledge answers are correct
                               suites=("knowledge", "ifbench", "pairwise",
                                       *(("knowledge_judge",) if judge or judge_urls else ())),
                               models=tuple(str(models[m]) for m in MODELS[1:]), labels=MODELS,
                               compare=tuple((c.a, c.b) for c in CLAIMS if c.b != "base"), judge=judge,
                               judge_urls=judge_urls, limits={"ifbench": limit, "knowledge": None, "knowledge_judge": None},
                               questions=plan.questions, max_new_tokens=max_new_tokens, engine=engine, loss=False,
                               seed=cfg.seed, quiet=quiet,
                               log=log)
    answers = answers_per_suite(summary, ("base", *MODELS))
    result = {"rule": RULE, "corpus": corpus, "documents_run": str(run), "examples_per_model": size,
              "verdicts": [verdict(summary, c) for c in CLAIMS], "answers": answers, "evaluation": summary}
    atomic_write_json(out / "knowledge.json", result)
    return result


def format_knowledge(result: dict[str, Any]) -> str:
    lines = [result["rule"], "", f"documents: {result['corpus']}; {result['examples_per_model']} examples per "
             f"model; models: base, {', '.join(MODELS)}", "", format_table(result["evaluation"]), "",
             "answers (per suite and model):"]
    for suite, per in result["answers"].items():
        for m, s in per.items():
            cut = s["cut_off_share"]
            lines.append(f"  {suite:<10} {m:<22} mean words {s['mean_words']:6.1f}  cut off "
                         f"{'-' if cut is None else f'{100 * cut:.0f}%'}  empty {100 * s['empty_share']:.0f}%")
    return "\n".join(lines + ["", "verdicts:"] + [f"  {v}" for v in result["verdicts"]])
