"""The `finetune:` settings: every field declared once, with its help and range (`setting(...)`).

From these declarations come the YAML loading and checks (`load_finetune_config`, errors naming file:line
and the field, or "(given on the command line)") and the options of `selfinstruct finetune`
(`options_of(FinetuneConfig)`: a flag per field, named by `flag=` or after the field). Precedence:
YAML < `--set key=value` < a dedicated flag. Rules that involve more than one value, or the file
system, are the dataclasses' `check(self, err)` methods.

Imports nothing heavy (torch/trl only inside `check` for sft_args): the CLI builds its options from here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..io.settings import SEED_MAX, TOKENS_MAX, Err, load_settings, setting
from .loading import is_adapter_dir
from .mixture import MixtureSource
from ..models import EMBEDDED_MODEL

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODEL_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class LoraOptions:
    enabled: bool = setting(False, flag="--lora", help="Train a LoRA adapter instead of all weights.")
    r: int = setting(16, min=1, help="LoRA rank.")
    alpha: int = setting(32, min=0, min_exclusive=True, help="LoRA alpha.")
    dropout: float = setting(0.05, min=0, help="LoRA dropout, in [0, 1).")
    target_modules: list[str] = setting(factory=lambda: ["all-linear"], flag="--lora-target",
                                        help="LoRA target module, e.g. q_proj; default: all-linear")
    merge: bool = setting(True, flag="--merge",
                          help="With --lora: save base+adapter merged into one full model that vLLM and "
                               "transformers load as is (default), or the adapter folder only (--no-merge).")

    def check(self, err: Err) -> None:
        if self.dropout >= 1.0:
            err("dropout", "must be < 1")
        if not self.target_modules:
            err("target_modules", "must name at least one module (or [all-linear])")


@dataclass
class TrainerSettings:
    """The settings `finetune` (SFT) and `dpo` (DPO) mean the same thing by, declared once; each command's
    config adds its own fields and may redeclare one with its own default and help (it keeps its place)."""
    model: str = setting(EMBEDDED_MODEL, help="Base model: HF id, local folder or embedded:smollm2-135m-instruct.")
    seed: int = setting(42, min=0, max=SEED_MAX, help="Seed of the trainer and of the data order.")
    learning_rate: float | None = setting(None, flag="--lr", min=0, min_exclusive=True,
                                          help="Learning rate (default: 2e-5 full, 2e-4 LoRA).")
    epochs: float = setting(3.0, min=0, min_exclusive=True, help="Number of epochs (ignored when --max-steps is set).")
    max_steps: int | None = setting(None, min=1, help="Stop after this many optimizer steps (overrides --epochs).")
    batch_size: int = setting(8, min=1, help="Per-device train batch size.")
    eval_batch_size: int | None = setting(None, min=1, help="Per-device eval batch size (default: --batch-size).")
    grad_accum: int = setting(1, min=1, help="Gradient accumulation steps.")
    max_length: int = setting(1024, min=8, max=TOKENS_MAX,
                              help="Max tokens per example (prompt + completion); longer ones are cut at the end.")
    warmup: float = setting(0.0, min=0, help="Warmup: fraction of the steps (< 1) or number of steps (>= 1).")
    lr_scheduler: str = setting("linear", help="Any transformers scheduler name: linear, cosine, constant, ...")
    weight_decay: float = setting(0.0, min=0, help="Weight decay.")
    max_grad_norm: float = setting(1.0, min=0, help="Gradient clipping norm.")
    precision: str = setting("auto", choices=PRECISIONS,
                             help="Mixed precision (auto: bf16, or fp16, on a GPU; fp32 on CPU).")
    model_dtype: str = setting("auto", choices=MODEL_DTYPES,
                               help="Weights as loaded (auto: float32, or bfloat16 for LoRA on a bf16 GPU).")
    gradient_checkpointing: bool = setting(False, help="Save GPU memory on big models (~20% slower).")
    logging_steps: int = setting(5, min=1, help="Log the train loss every N steps.")
    eval_steps: int | None = setting(None, min=1, help="Also evaluate every N steps (default: before/after only).")
    save_steps: int = setting(100, min=1, help="Checkpoint every N steps (to OUT/checkpoints, for --resume).")
    save_total_limit: int = setting(2, min=1, help="Checkpoints kept while training.")
    keep_checkpoints: bool = setting(False, help="Keep OUT/checkpoints after a finished run (default: deleted).")
    chat_template: str | None = setting(None, help="For models without a chat template: a tokenizer folder/id "
                                                   "or a .jinja file.")
    lora: LoraOptions = setting(factory=LoraOptions, help="LoRA settings.")
    source: str | None = setting(None, internal=True)  # the YAML file, when there is one
    default_lr: ClassVar[tuple[float, float]] = (2e-5, 2e-4)  # (full, LoRA) when learning_rate is not set

    def effective_lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        full, lora = self.default_lr
        return lora if self.lora.enabled else full


@dataclass
class FinetuneConfig(TrainerSettings):
    packing: bool = setting(False, help="Pack several examples into each sequence.")
    data: list[MixtureSource] | None = setting(None, help="A mixture instead of -d DATA (YAML or --set only): "
                                                          "[{run: DIR, weight: 1.0}, {text: DOCS, weight: 0.3}]; "
                                                          "see train/mixture.py")
    mixture_size: int | None = setting(None, min=1, help="Training examples drawn from the mixture (default: "
                                                         "the sum of its sources' train rows).")
    text_eval_share: float = setting(0.05, min=0.0, max=0.5, help="Share of a text source's chunks held out for "
                                                                  "its eval loss.")
    sft_args: dict[str, Any] = setting(factory=dict, help="Any other trl.SFTConfig field (YAML or --set only).")
    default_lr: ClassVar[tuple[float, float]] = (2e-5, 2e-4)

    def check(self, err: Err) -> None:
        check_model(self.model, err)
        check_trainer_args(self.sft_args, "sft_args", "SFTConfig", err)
        if self.data is not None and not self.data:
            err("data", "name at least one source, or leave data out and give -d DATA")
        if self.data and self.packing:
            err("packing", "a mixture is trained unpacked (its rows mix two losses)")


def check_model(model: str, err: Err, *, adapters: bool = False) -> None:
    """A model name that can be loaded: not empty, an existing path when it looks like one, a folder with a
    config.json (or, where `adapters`, a PEFT adapter folder)."""
    if not model:
        err("model", "must not be empty")
    p = Path(model).expanduser()
    if model.startswith((".", "/", "~")) and not p.exists():
        err("model", f"model path does not exist: {model}")
    if p.is_dir() and not (p / "config.json").is_file():
        if not (adapters and is_adapter_dir(p)):
            err("model", f"model folder has no config.json{' (nor adapter_config.json)' if adapters else ''}: {model}")


def check_trainer_args(args: dict[str, Any], key: str, config_class: str, err: Err) -> None:
    """Every key of `args` is a field of trl.<config_class> (unchecked without trl: reported when training starts)."""
    if not args:
        return
    try:
        import trl
        known = {f.name for f in dataclasses.fields(getattr(trl, config_class))}
    except Exception:
        return
    for k in args:
        if k not in known:
            err(f"{key}.{k}", f"not a field of trl.{config_class}")


@dataclass
class DpoConfig(TrainerSettings):
    """`selfinstruct dpo`: TRL's DPOTrainer on a run's preference pairs; the same training settings as
    `finetune` where they mean the same thing."""
    model: str = setting(EMBEDDED_MODEL, help="Policy to start from, usually the `finetune` output: a model folder, "
                                              "a LoRA adapter folder (merged into its base first: the reference "
                                              "model is the fine-tuned one), an HF id or the embedded alias.")
    learning_rate: float | None = setting(None, flag="--lr", min=0, min_exclusive=True,
                                          help="Learning rate (default: 1e-6 full, 2e-5 LoRA).")
    beta: float = setting(0.1, min=0, min_exclusive=True,
                          help="DPO beta: how far the policy may move from the reference.")
    loss_type: list[str] = setting(factory=lambda: ["sigmoid"],
                                   help="trl.DPOConfig loss_type (a list in TRL 1.x; sigmoid: the DPO paper's loss).")
    epochs: float = setting(1.0, min=0, min_exclusive=True, help="Number of epochs (ignored when --max-steps is set).")
    batch_size: int = setting(4, min=1, help="Per-device train batch size (pairs).")
    max_length: int = setting(1024, min=8, max=TOKENS_MAX,
                              help="Max tokens per sequence (prompt + answer), cut at the end.")
    data: list[MixtureSource] | None = setting(None, help="A mixture of preference runs instead of -d DATA (YAML or "
                                                          "--set only): [{run: DIR, weight: 1.0}, ...]")
    mixture_size: int | None = setting(None, min=1, help="Pairs drawn from the mixture (default: the sum of its "
                                                         "sources' train pairs).")
    dpo_args: dict[str, Any] = setting(factory=dict, help="Any other trl.DPOConfig field (YAML or --set only).")
    default_lr: ClassVar[tuple[float, float]] = (1e-6, 2e-5)

    def check(self, err: Err) -> None:
        check_model(self.model, err, adapters=True)
        if self.lora.enabled and not self.lora.merge and is_adapter_dir(Path(self.model).expanduser()):
            # the SFT adapter is merged into its base in memory; a new adapter saved alone would name that
            # base, not the SFT model, and loading it later would silently drop the SFT weights
            err("lora.merge", f"{self.model} is a LoRA adapter: DPO with --lora on it must save merged (--merge), "
                              "or start from a merged SFT model (finetune --merge)")
        if not self.loss_type:
            err("loss_type", "name at least one loss (e.g. [sigmoid])")
        for i, src in enumerate(self.data or []):
            if src.text is not None:
                err(f"data[{i}].text", "dpo mixes preference runs (run:); raw text has no pairs")
        check_trainer_args(self.dpo_args, "dpo_args", "DPOConfig", err)


@dataclass
class GrpoConfig(TrainerSettings):
    """`selfinstruct grpo`: TRL's GRPOTrainer on a run's constrained prompts, the reward the share of its
    constraints an answer follows (strict check, `selfinstruct.constraints`); the same training settings
    as `finetune` and `dpo` where they mean the same thing."""
    model: str = setting(EMBEDDED_MODEL, help="Policy to start from, usually the `finetune` (or `dpo`) output: a "
                                              "model folder, a LoRA adapter folder (merged into its base first), "
                                              "an HF id or the embedded alias.")
    learning_rate: float | None = setting(None, flag="--lr", min=0, min_exclusive=True,
                                          help="Learning rate (default: 1e-6 full, 2e-5 LoRA; IF-RLVR used 5e-7 "
                                               "on 8B models).")
    epochs: float = setting(1.0, min=0, min_exclusive=True, help="Number of epochs (ignored when --max-steps is set).")
    batch_size: int = setting(8, min=1, help="Per-device batch size in completions (prompts x generations); a "
                                             "multiple of --num-generations.")
    num_generations: int = setting(4, min=2, help="Answers sampled per prompt: the group whose mean reward is "
                                                  "the baseline (IF-RLVR: 16).")
    max_length: int = setting(1024, min=8, max=TOKENS_MAX,
                              help="Max tokens of a prompt (chat template applied): longer ones are left out.")
    max_completion_length: int = setting(256, min=1, max=TOKENS_MAX, help="Token budget of a sampled answer.")
    temperature: float = setting(1.0, min=0, min_exclusive=True, help="Sampling temperature of the answers.")
    beta: float = setting(0.01, min=0, help="KL penalty against the starting policy (IF-RLVR: 0.01; 0: none, no "
                                           "reference model kept).")
    length_penalty: float = setting(0.0, min=0, help="Weight of a length term: minus the share of the token budget "
                                                     "an answer uses (0: off).")
    judge_weight: float = setting(0.0, min=0, help="Weight of a judge's score (scaled to [0, 1]) added to the reward "
                                                   "(0: off; needs --judge-url).")
    grpo_args: dict[str, Any] = setting(factory=dict, help="Any other trl.GRPOConfig field (YAML or --set only).")
    default_lr: ClassVar[tuple[float, float]] = (1e-6, 2e-5)

    def check(self, err: Err) -> None:
        check_model(self.model, err, adapters=True)
        if self.batch_size % self.num_generations:
            err("batch_size", f"must be a multiple of num_generations ({self.num_generations}): each prompt's "
                              "answers are one group")
        if self.lora.enabled and not self.lora.merge and is_adapter_dir(Path(self.model).expanduser()):
            err("lora.merge", f"{self.model} is a LoRA adapter: GRPO with --lora on it must save merged (--merge)")
        check_trainer_args(self.grpo_args, "grpo_args", "GRPOConfig", err)


def load_grpo_config(path: str | Path | None, flags: dict[str, Any] | None = None, *,
                     sets: list[str] | tuple[str, ...] = ()) -> GrpoConfig:
    """The `grpo:` section of a YAML file (or the defaults), then `--set`, then the dedicated flags."""
    return load_settings(GrpoConfig, path, section="grpo", sets=sets, flags=flags)


def load_dpo_config(path: str | Path | None, flags: dict[str, Any] | None = None, *,
                    sets: list[str] | tuple[str, ...] = ()) -> DpoConfig:
    """The `dpo:` section of a YAML file (or the defaults), then `--set`, then the dedicated flags."""
    return load_settings(DpoConfig, path, section="dpo", sets=sets, flags=flags)


def load_finetune_config(path: str | Path | None, flags: dict[str, Any] | None = None, *,
                         sets: list[str] | tuple[str, ...] = ()) -> FinetuneConfig:
    """The `finetune:` section of a YAML file (the defaults when path is None), then the `--set KEY=VALUE`
    items, then the dedicated flags (dotted keys, None = not given), checked as a whole."""
    return load_settings(FinetuneConfig, path, section="finetune", sets=sets, flags=flags)
