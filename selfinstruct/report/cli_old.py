"""Click commands `selfinstruct stats` and `selfinstruct show` (registered in cli.py)."""
from __future__ import annotations

from pathlib import Path

import click

from ..io.errors import user_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               short_help="Report on a run: stage counts, drops, lengths, ROUGE-L to seeds, diversity.")
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
    from .stats import compute_stats, format_terminal, write_report

    rep = compute_stats(run_dir, seeds=seeds)
    path = write_report(rep, out or Path(run_dir) / "report.html", plots=not no_plots)
    click.echo(format_terminal(rep, path), nl=False)


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               short_help="Page through the records or rejects of a stage (RUNDIR/STAGE).")
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
    from .show import show as run_show

    run_show(stage_dir, rejects=rejects, reason=reason, offset=offset, n=num, as_json=as_json,
             echo=click.echo, echo_err=lambda m: click.echo(m, err=True))
