"""The training commands: `finetune`, `dpo`, `grpo` (each a trainer of train/, its settings derived from
its config dataclass), and the experiments: `rlvr` (which training on verified prompts helps) and
`knowledge` (raw domain text vs instructions). Registered on the `selfinstruct`
group by cli/__init__.py."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..io.errors import UserError, user_errors
from ..io.settings import click_options, given, options_of
from ..train.config import DpoConfig, FinetuneConfig, GrpoConfig
from .common import echo_err, stack

FINETUNE_OPTIONS = options_of(FinetuneConfig)
DPO_OPTIONS = options_of(DpoConfig)
GRPO_OPTIONS = options_of(GrpoConfig)


def trainer_options(section: str, settings, *, data: str, eval_data: str, no_eval: str, set_example: str,
                    data_required: bool = True):
    """The options of a training command (`finetune`, `dpo`, `grpo`): its config section's YAML, data, output, the
    settings derived from its config dataclass, resume and overwrite."""
    return stack(
        click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None,
                     help=f"YAML with a `{section}:` section (see pipelines/{section}.yaml). Default: built-in defaults."),
        click.option("-d", "--data", "data", required=data_required, type=click.Path(path_type=Path), help=data),
        click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
                     help="Output model folder (checkpoints go to OUT/checkpoints/)."),
        click.option("--eval-data", type=click.Path(path_type=Path), default=None, help=eval_data),
        click.option("--no-eval", is_flag=True, help=no_eval),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help=f"Set any key of the `{section}:` section, value in YAML syntax (repeatable), e.g. "
                          f"{set_example}."),
        click_options(settings),
        click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in OUT/checkpoints."),
        click.option("--overwrite", is_flag=True, help="Replace a model/checkpoints already in OUT."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
    )


@click.command()
@trainer_options("finetune", FINETUNE_OPTIONS,
                 data="Run dir (runs/x: uses runs/x/export/), export dir, or one file: prompt-completion or "
                      "messages JSONL, or Alpaca JSON. A train.* file brings its eval.* sibling as the eval split. "
                      "Or leave it out and give a mixture in the config (`finetune.data`).",
                 data_required=False,
                 eval_data="Eval split file (overrides DATA's).", no_eval="Skip the eval split.",
                 set_example="--set lr_scheduler=cosine --set lora.target_modules=[q_proj,v_proj] "
                             "--set sft_args.optim=adamw_torch")
@user_errors
def finetune(config_path, data, out_dir, eval_data, no_eval, sets, resume, overwrite, quiet, **settings):
    """Supervised fine-tuning (TRL SFTTrainer) of a chat model on prompt-completion data, loss on the
    completion only. Saves a model folder that vLLM and transformers load (or a LoRA adapter: --no-merge).

    Settings: the `finetune:` section of CONFIG (or the defaults), then --set KEY=VALUE, then the
    dedicated flags: a flag wins over --set, which wins over the YAML file. Each flag from --model to
    --packing sets one key of the `finetune:` section (see pipelines/finetune.yaml)."""
    from ..train.config import load_finetune_config
    from ..train.finetune import format_summary, run_finetune

    cfg = load_finetune_config(config_path, given(FINETUNE_OPTIONS, settings), sets=sets)
    run_trainer(run_finetune, format_summary, cfg, data, out_dir, eval_data=eval_data, no_eval=no_eval,
                resume=resume, overwrite=overwrite, quiet=quiet)


def run_trainer(run, fmt, cfg, data, out_dir, **kw) -> None:
    """Run a trainer (finetune, dpo, grpo); Ctrl-C says how to go on; the summary is printed once (main process)."""
    try:
        summary = run(cfg, data, out_dir, log=echo_err, **kw)
    except KeyboardInterrupt:
        click.echo("interrupted; re-run the same command with --resume to continue from the last checkpoint "
                   f"in {out_dir}/checkpoints", err=True)
        sys.exit(130)
    from accelerate import PartialState
    if PartialState().is_main_process:
        click.echo(fmt(summary, out_dir))
        click.echo(f"done: {out_dir}")


@click.command()
@trainer_options("dpo", DPO_OPTIONS,
                 data="Preference run dir (uses RUN/export/train.preference.jsonl and eval.preference.jsonl), its "
                      "export dir, or one preference JSONL file (a train.* file brings its eval.* sibling). Or "
                      "leave it out and give a mixture of preference runs in the config (`dpo.data`).",
                 data_required=False,
                 eval_data="Eval pairs file (overrides DATA's).", no_eval="Skip the held-out pairs.",
                 set_example="--set beta=0.05 --set dpo_args.optim=adamw_torch")
@click.option("--iterations", type=click.IntRange(min=1), default=1, show_default=True,
              help="Rounds of new pairs (DATA's preference pipeline, answered by the newest model) and DPO, "
                   "each in OUT/iteration-N/ (Self-Rewarding LMs); a re-run redoes nothing finished.")
@user_errors
def dpo(config_path, data, out_dir, eval_data, no_eval, sets, resume, overwrite, quiet, iterations, **settings):
    """Direct preference optimisation (TRL DPOTrainer) of a policy, usually the `finetune` output (a model
    folder or a LoRA adapter folder), on a preference run's pairs. Reports the DPO loss and reward accuracy
    on the held-out pairs before and after; saves a model folder vLLM and transformers load (or an adapter).

    Settings: the `dpo:` section of CONFIG (or the defaults), then --set KEY=VALUE, then the flags."""
    from ..train.config import load_dpo_config
    from ..train.dpo import format_dpo_summary, run_dpo

    cfg = load_dpo_config(config_path, given(DPO_OPTIONS, settings), sets=sets)
    if iterations > 1:
        from ..workflows.iterate import format_iterations, run_iterations
        if data is None:
            raise UserError("--iterations needs -d DATA: the preference run whose pipeline makes each next round's pairs")
        if resume or overwrite or eval_data:
            raise UserError("--iterations resumes by itself and takes each iteration's own eval pairs: leave out "
                            "--resume, --overwrite and --eval-data (delete OUT to start over)")
        click.echo(format_iterations(run_iterations(cfg, data, out_dir, iterations, no_eval=no_eval, quiet=quiet,
                                                    log=echo_err)))
        return
    run_trainer(run_dpo, format_dpo_summary, cfg, data, out_dir, eval_data=eval_data, no_eval=no_eval,
                resume=resume, overwrite=overwrite, quiet=quiet)


@click.command()
@trainer_options("grpo", GRPO_OPTIONS,
                 data="Run dir of a verified pipeline (uses RUN/export/train.constraints.jsonl and "
                      "eval.constraints.jsonl), its export dir, or one constraints JSONL file.",
                 eval_data="Held-out prompts file (overrides DATA's).", no_eval="Skip the held-out prompts.",
                 set_example="--set beta=0 --set grpo_args.top_p=0.95")
@click.option("--judge-url", "judge_urls", multiple=True,
              help="OpenAI-compatible server(s) of the judge for --judge-weight (e.g. http://host:8000/v1).")
@click.option("--judge", default=None, help="The judge's model name on --judge-url (default: the policy's).")
@user_errors
def grpo(config_path, data, out_dir, eval_data, no_eval, sets, resume, overwrite, quiet, judge_urls, judge,
         **settings):
    """Reinforcement learning with verifiable rewards (TRL GRPOTrainer) of a policy, usually the `finetune`
    output, on a verified run's constrained prompts: the reward is the share of each prompt's constraints
    an answer follows, checked in code (plus an optional length cost and judge score). Reports the mean
    reward on the held-out prompts before and after; saves a model folder vLLM and transformers load.

    Settings: the `grpo:` section of CONFIG (or the defaults), then --set KEY=VALUE, then the flags."""
    from ..train.config import load_grpo_config
    from ..train.grpo import format_grpo_summary, run_grpo

    cfg = load_grpo_config(config_path, given(GRPO_OPTIONS, settings), sets=sets)
    if cfg.judge_weight and not judge_urls:
        raise UserError("--judge-weight needs a judge: --judge-url http://host:port/v1 (and --judge MODEL)")
    score, close = None, (lambda: None)
    if cfg.judge_weight:
        from ..workflows.judge_reward import server_judge
        score, close = server_judge(judge or cfg.model, tuple(judge_urls), seed=cfg.seed)
    try:
        run_trainer(run_grpo, format_grpo_summary, cfg, data, out_dir, eval_data=eval_data, no_eval=no_eval,
                    resume=resume, overwrite=overwrite, quiet=quiet, judge=score)
    finally:
        close()


def experiment_options(log_name: str):
    """What the experiments (`rlvr`, `knowledge`) share: the pairwise judge, the engine, -q."""
    return stack(
        click.option("--judge", default=None, help="Judge model for pairwise (default: the base model)."),
        click.option("--judge-url", "judge_urls", multiple=True, help="OpenAI-compatible server(s) serving --judge."),
        click.option("--engine", type=click.Choice(["auto", "vllm", "transformers"]), default="auto",
                     show_default=True),
        click.option("-q", "--quiet", is_flag=True, help=f"No progress bars; library output to OUT/{log_name}."),
    )


@click.command()
@click.option("-d", "--data", "run_dir", required=True, type=click.Path(path_type=Path),
              help="A run of pipelines/verified.yaml (export: prompt_completion, preference, constraints).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Experiment folder: each model's training data and folder, the evaluation, rlvr.json.")
@click.option("--finetune-config", type=click.Path(path_type=Path), default=None,
              help="YAML with a `finetune:` section, for plain and verified SFT (default: built-in defaults).")
@click.option("--dpo-config", type=click.Path(path_type=Path), default=None, help="YAML with a `dpo:` section.")
@click.option("--grpo-config", type=click.Path(path_type=Path), default=None, help="YAML with a `grpo:` section.")
@click.option("--sft-steps", type=click.IntRange(min=1), default=20, show_default=True,
              help="Optimizer steps of each SFT (the same for plain and verified).")
@click.option("--dpo-steps", type=click.IntRange(min=1), default=10, show_default=True, help="DPO steps.")
@click.option("--grpo-steps", type=click.IntRange(min=1), default=10, show_default=True, help="GRPO steps.")
@click.option("--suite", "suites", multiple=True, type=click.Choice(["ifbench", "constraints", "pairwise"]),
              help="Suites (repeatable; default all three).")
@click.option("--limit", type=int, default=100, show_default=True,
              help="Prompts per suite (IFBench's first N; 0: all 294, as on a GPU).")
@experiment_options("rlvr.log")
@user_errors
def rlvr(run_dir, out_dir, finetune_config, dpo_config, grpo_config, sft_steps, dpo_steps, grpo_steps, suites,
         limit, judge, judge_urls, engine, quiet):
    """Which training on a verified run's constrained prompts helps: plain SFT (first sampled answers),
    verified SFT (verified answers; same prompts and steps), verified SFT + DPO (exact pairs) and verified SFT
    + GRPO (the constraint checkers as reward), each evaluated against the base on IFBench, the held-out
    constraints suite and the pairwise judge. The decision rule is printed before anything runs."""
    import dataclasses

    from ..train.config import load_dpo_config, load_finetune_config, load_grpo_config
    from ..workflows.rlvr import Settings, format_rlvr, run_rlvr

    settings = Settings(
        finetune=dataclasses.replace(load_finetune_config(finetune_config), max_steps=sft_steps),
        dpo=dataclasses.replace(load_dpo_config(dpo_config), max_steps=dpo_steps),
        grpo=dataclasses.replace(load_grpo_config(grpo_config), max_steps=grpo_steps))
    result = run_rlvr(run_dir, out_dir, settings, suites=tuple(suites) or ("ifbench", "constraints", "pairwise"),
                      limit=limit or None, engine=engine, judge=judge, judge_urls=tuple(judge_urls), quiet=quiet,
                      log=echo_err)
    click.echo(format_rlvr(result))


@click.command()
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Experiment folder: the documents, their run, each model, the evaluation, knowledge.json.")
@click.option("--general", type=click.Path(path_type=Path), default=Path("runs/default"), show_default=True,
              help="A general Self-Instruct run (make generate): the general instructions of the last mixture and "
                   "the pairwise judge's held-out instructions.")
@click.option("--docs", type=click.Path(path_type=Path), default=None,
              help="Your documents (folder, glob or file) instead of the standard library's docstrings; give "
                   "--questions about them too.")
@click.option("--questions", type=click.Path(path_type=Path), default=None,
              help="Closed-book questions with reference spans (default: benchmarks/stdlib_docs/questions.jsonl).")
@click.option("--documents-config", type=click.Path(path_type=Path), default=Path("pipelines/documents.yaml"),
              show_default=True, help="The documents pipeline.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="A setting of the documents pipeline.")
@click.option("--finetune-config", type=click.Path(path_type=Path), default=None,
              help="YAML with a `finetune:` section: the settings all four fine-tunes share.")
@click.option("--max-steps", type=click.IntRange(min=1), default=40, show_default=True,
              help="Optimizer steps of each fine-tune (the same for all four).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Batch of each fine-tune.")
@click.option("--max-length", type=click.IntRange(min=8), default=512, show_default=True,
              help="Tokens per training example (a text source's chunks are cut to fit).")
@click.option("--limit", type=int, default=100, show_default=True, help="IFBench's first N prompts (0: all 294).")
@experiment_options("knowledge.log")
@user_errors
def knowledge(out_dir, general, docs, questions, documents_config, sets, finetune_config, max_steps, batch_size,
              max_length, limit, judge, judge_urls, engine, quiet):
    """The seed's claim, measured: a model tuned on raw domain text gains knowledge but may lose instruction
    following; instruction-formatted examples keep it. Trains text only, grounded instructions only, both,
    and both + general instructions (the same steps), and compares them with the base on closed-book
    questions about the documents, IFBench and the pairwise judge. The rule is printed first."""
    import dataclasses

    from ..train.config import load_finetune_config
    from ..workflows.knowledge import DEFAULT_QUESTIONS, DOCUMENTS_SETS, Plan, format_knowledge, run_knowledge

    if docs is not None and questions is None:
        raise UserError("--docs needs --questions: closed-book questions about those documents")
    plan = Plan(general=general, documents_config=documents_config, docs=docs, questions=questions or DEFAULT_QUESTIONS,
                finetune=dataclasses.replace(load_finetune_config(finetune_config), max_steps=max_steps,
                                             batch_size=batch_size, max_length=max_length),
                documents_sets=(*DOCUMENTS_SETS, *sets))
    result = run_knowledge(plan, out_dir, limit=limit or None, engine=engine, judge=judge, judge_urls=tuple(judge_urls),
                           quiet=quiet, log=echo_err)
    click.echo(format_knowledge(result))
