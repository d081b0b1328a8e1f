"""`selfinstruct finetune`: supervised fine-tuning with TRL's SFTTrainer on the exported data.

Data is TRL's conversational prompt-completion format, so the loss is computed on the completion only
(prompt tokens get label -100) and the text is rendered with the model's own chat template. Run dirs,
export dirs, prompt-completion / messages JSONL and Alpaca JSON are accepted (the last two are converted).

The output folder is a complete model (full fine-tune, or LoRA merged into the base: loads in vLLM and
transformers as is), or, with LoRA and no merge, a PEFT adapter folder (transformers loads it with peft
installed; vLLM loads it with `enable_lora=True` + `LoRARequest`). The tokenizer, with its chat template,
is saved alongside either way. Checkpoints go to OUT/checkpoints/ (resumable with --resume).

torch / transformers / trl / peft are imported inside the functions: `selfinstruct --help` stays fast.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from .. import __version__
from ..io.errors import UserError
from ..io.jsonl import atomic_write_json, iter_jsonl
from ..models import EMBEDDED_MODEL, resolve_model

SUMMARY_FILE = "selfinstruct-finetune.json"
CHECKPOINT_DIR = "checkpoints"
ADAPTER_SUBDIR = "adapter"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODEL_DTYPES = ("auto", "float32", "bfloat16", "float16")
ROLES = ("system", "user", "assistant", "tool")


# ---------------------------------------------------------------------------------------------- config

@dataclass
class LoraOptions:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    merge: bool = True  # save base + adapter merged into one full model folder (vLLM/transformers load it as is)


@dataclass
class FinetuneConfig:
    model: str = EMBEDDED_MODEL
    seed: int = 42
    learning_rate: float | None = None  # None: 2e-5 for a full fine-tune, 2e-4 with LoRA
    epochs: float = 3.0
    max_steps: int | None = None  # set: overrides epochs
    batch_size: int = 8  # per device
    eval_batch_size: int | None = None  # None: batch_size
    grad_accum: int = 1
    max_length: int = 1024  # tokens (prompt + completion); longer examples are truncated at the end
    warmup: float = 0.0  # < 1: fraction of the steps; >= 1: number of steps
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto: bf16 on a GPU that has it, fp16 on other GPUs, fp32 on CPU
    model_dtype: str = "auto"  # auto: float32, or bfloat16 for LoRA on a bf16 GPU
    gradient_checkpointing: bool = False
    packing: bool = False
    logging_steps: int = 5
    eval_steps: int | None = None  # None: eval loss before and after training only
    save_steps: int = 100
    save_total_limit: int = 2
    keep_checkpoints: bool = False  # False: delete OUT/checkpoints once the final model is saved
    chat_template: str | None = None  # tokenizer folder/id or .jinja file, for models without a chat template
    lora: LoraOptions = field(default_factory=LoraOptions)
    sft_args: dict[str, Any] = field(default_factory=dict)  # any other trl.SFTConfig field
    source: str | None = field(default=None, metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d

    def effective_lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.lora.enabled else 2e-5


def _validate(cfg: FinetuneConfig, err) -> None:
    def positive(name, value, allow_none=False):
        if value is None and allow_none:
            return
        if value is None or value < 1:
            err(name, "must be >= 1")

    if not cfg.model:
        err("model", "must not be empty")
    p = Path(cfg.model).expanduser()
    if cfg.model.startswith((".", "/", "~")) and not p.exists():
        err("model", f"model path does not exist: {cfg.model}")
    if p.exists() and p.is_dir() and not (p / "config.json").is_file():
        err("model", f"model folder has no config.json: {cfg.model}")
    if cfg.learning_rate is not None and not cfg.learning_rate > 0:
        err("learning_rate", "must be > 0")
    if not cfg.epochs > 0:
        err("epochs", "must be > 0")
    positive("max_steps", cfg.max_steps, allow_none=True)
    positive("batch_size", cfg.batch_size)
    positive("eval_batch_size", cfg.eval_batch_size, allow_none=True)
    positive("grad_accum", cfg.grad_accum)
    if cfg.max_length < 8:
        err("max_length", "must be >= 8")
    if cfg.warmup < 0:
        err("warmup", "must be >= 0")
    if cfg.weight_decay < 0:
        err("weight_decay", "must be >= 0")
    if cfg.precision not in PRECISIONS:
        err("precision", f"must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.model_dtype not in MODEL_DTYPES:
        err("model_dtype", f"must be one of {', '.join(MODEL_DTYPES)}, got {cfg.model_dtype!r}")
    positive("logging_steps", cfg.logging_steps)
    positive("eval_steps", cfg.eval_steps, allow_none=True)
    positive("save_steps", cfg.save_steps)
    positive("save_total_limit", cfg.save_total_limit)
    positive("lora.r", cfg.lora.r)
    if not cfg.lora.alpha > 0:
        err("lora.alpha", "must be > 0")
    if not 0.0 <= cfg.lora.dropout < 1.0:
        err("lora.dropout", "must be in [0, 1)")
    if not cfg.lora.target_modules:
        err("lora.target_modules", "must name at least one module (or [all-linear])")
    if cfg.sft_args:
        from_sft = _sft_config_fields()
        if from_sft is not None:
            for k in cfg.sft_args:
                if k not in from_sft:
                    err(f"sft_args.{k}", "not a field of trl.SFTConfig")


def _sft_config_fields() -> set[str] | None:
    try:
        from trl import SFTConfig
    except Exception:  # trl missing: reported when training starts
        return None
    return {f.name for f in dataclasses.fields(SFTConfig)}


def load_finetune_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> FinetuneConfig:
    """Load the `finetune:` section of a YAML file (or the defaults when path is None); apply the
    command-line overrides (dotted keys, None = not given); validate. Errors name file:line and the field."""
    from ..generate.config import _Lines, _build, read_yaml

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    lines = _Lines(None)
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        doc, lines = read_yaml(path)
        for key in doc:
            if key != "finetune":
                raise UserError("unknown top-level key; put the settings under 'finetune:'", path=path,
                                line=lines.get(str(key)), field=str(key))
        if "finetune" not in doc:
            raise UserError("no 'finetune:' section", path=path, line=1)
        data = doc["finetune"] if doc["finetune"] is not None else {}
        if not isinstance(data, dict):
            raise UserError(f"expected a mapping, got {type(data).__name__}", path=path,
                            line=lines.get("finetune"), field="finetune")

    def err(p: str, msg: str):
        key = p.split("[")[0]
        if key in overrides:
            raise UserError(f"{msg} (given on the command line)", field=p)
        raise UserError(msg, path=path, line=lines.get(f"finetune.{p}") if path else None, field=p)

    cfg = _build(FinetuneConfig, data, "", err)
    for key, value in overrides.items():
        obj = cfg
        *parents, last = key.split(".")
        for p in parents:
            obj = getattr(obj, p)
        if not hasattr(obj, last):
            raise KeyError(key)
        setattr(obj, last, value)
    _validate(cfg, err)
    cfg.source = str(path) if path is not None else None
    return cfg


# ------------------------------------------------------------------------------------------------ data

@dataclass
class DataFiles:
    train: Path
    eval: Path | None
    fmt: str  # prompt_completion | messages | alpaca | auto


_EXPORT_ORDER = (("prompt_completion", "{split}.prompt_completion.jsonl"),
                 ("messages", "{split}.messages.jsonl"),
                 ("alpaca", "{split}.alpaca.json"))


def _export_dir(p: Path) -> Path | None:
    """A run dir (has export/) or an export dir (has train.* files)."""
    if (p / "export").is_dir():
        return p / "export"
    if any((p / name.format(split=s)).is_file() for _, name in _EXPORT_ORDER for s in ("train", "eval")):
        return p
    return None


def _pick_in_export(d: Path, split: str) -> tuple[Path, str] | None:
    for fmt, name in _EXPORT_ORDER:
        f = d / name.format(split=split)
        if f.is_file():
            return f, fmt
    return None


def resolve_data(data: str | Path, eval_data: str | Path | None = None, no_eval: bool = False) -> DataFiles:
    """DATA: a run dir (runs/x -> runs/x/export/), an export dir, or one file. A file named train.* gets its
    eval.* sibling as the eval split when there is one. eval_data overrides the eval split."""
    p = Path(data)
    if not p.exists():
        raise UserError("data not found (expected a run directory, an export directory or a JSONL/JSON file)",
                        path=p)
    ev: Path | None = None
    if p.is_dir():
        d = _export_dir(p)
        if d is None:
            raise UserError("no exported data here: expected export/ or train.prompt_completion.jsonl "
                            "(run `selfinstruct generate` with the export stage first)", path=p)
        found = _pick_in_export(d, "train")
        if found is None:
            raise UserError("no train.prompt_completion.jsonl, train.messages.jsonl or train.alpaca.json", path=d)
        train, fmt = found
        ev_file = d / train.name.replace("train.", "eval.", 1)
        ev = ev_file if ev_file.is_file() else None
    else:
        train, fmt = p, "auto"
        if p.name.startswith("train."):
            sib = p.with_name("eval." + p.name[len("train."):])
            ev = sib if sib.is_file() else None
    if eval_data is not None:
        ev = Path(eval_data)
        if not ev.is_file():
            raise UserError("eval data file not found", path=ev)
    if no_eval:
        ev = None
    return DataFiles(train=train, eval=ev, fmt=fmt)


def resolve_eval_data(data: str | Path) -> Path:
    """For `evaluate`: a run/export dir means its eval split; a file is used as is."""
    p = Path(data)
    if not p.exists():
        raise UserError("eval data not found", path=p)
    if p.is_dir():
        d = _export_dir(p)
        found = _pick_in_export(d, "eval") if d is not None else None
        if found is None:
            raise UserError("no eval.prompt_completion.jsonl, eval.messages.jsonl or eval.alpaca.json here", path=p)
        return found[0]
    return p


def _messages(value: Any, where: Callable[[str, str], None], name: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        where(name, "expected a non-empty list of {role, content} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            where(f"{name}[{i}]", f"expected a {{role, content}} object, got {type(m).__name__}")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            where(f"{name}[{i}].role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            where(f"{name}[{i}].content", f"expected a string, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def to_prompt_completion(obj: dict[str, Any], where: Callable[[str, str], None], default_id: str) -> dict[str, Any]:
    """One row of any supported format -> {"id", "prompt": [messages], "completion": [assistant message]}."""
    from ..io.formats import user_prompt

    rid = obj.get("id", default_id)
    rid = str(rid) if rid is not None else default_id
    if "prompt" in obj and "completion" in obj:
        prompt, completion = obj["prompt"], obj["completion"]
        if isinstance(prompt, str):  # standard (text) prompt-completion: render with the chat template too
            prompt = [{"role": "user", "content": prompt}]
        if isinstance(completion, str):
            completion = [{"role": "assistant", "content": completion}]
        prompt = _messages(prompt, where, "prompt")
        completion = _messages(completion, where, "completion")
        if completion[-1]["role"] != "assistant":
            where("completion", "the last completion message must have role 'assistant'")
        if prompt[-1]["role"] == "assistant":
            where("prompt", "the prompt must not end with an assistant message")
        return {"id": rid, "prompt": prompt, "completion": completion}
    if "messages" in obj:
        msgs = _messages(obj["messages"], where, "messages")
        if msgs[-1]["role"] != "assistant":
            where("messages", "the last message must have role 'assistant'")
        if len(msgs) < 2:
            where("messages", "need at least one message before the assistant answer")
        return {"id": rid, "prompt": msgs[:-1], "completion": msgs[-1:]}
    if "instruction" in obj and "output" in obj:
        inst, inp, out = obj["instruction"], obj.get("input") or "", obj["output"]
        for k, v in (("instruction", inst), ("input", inp), ("output", out)):
            if not isinstance(v, str):
                where(k, f"expected a string, got {type(v).__name__}")
        if not inst.strip():
            where("instruction", "is empty")
        return {"id": rid, "prompt": [{"role": "user", "content": user_prompt(inst, inp)}],
                "completion": [{"role": "assistant", "content": out}]}
    where("", "unrecognised row: expected prompt+completion, messages, or instruction+output (Alpaca) fields")
    raise AssertionError  # unreachable


def load_examples(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (prompt-completion, messages or Alpaca rows) or of a JSON array (Alpaca JSON),
    as prompt-completion dicts. Bad rows raise UserError naming file:line (JSONL) or the item index (JSON)."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    if path.suffix == ".json":
        try:
            items = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise UserError("file not found", path=path) from None
        except IsADirectoryError:
            raise UserError("is a directory, expected a JSON file", path=path) from None
        except UnicodeDecodeError as e:
            raise UserError(f"not valid UTF-8 (byte {e.start})", path=path) from None
        except json.JSONDecodeError as e:
            raise UserError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
        if not isinstance(items, list):
            raise UserError(f"expected a JSON array of examples (Alpaca format), got {type(items).__name__}",
                            path=path)
        for i, obj in enumerate(items):
            def where(f, msg, i=i):
                raise UserError(msg, path=path, field=f"[{i}]" + (f".{f}" if f else ""))
            if not isinstance(obj, dict):
                where("", f"expected an object, got {type(obj).__name__}")
            rows.append(to_prompt_completion(obj, where, f"{path.stem}-{i}"))
        return rows
    for line, obj in iter_jsonl(path):
        def where(f, msg, line=line):
            raise UserError(msg, path=path, line=line, field=f or None)
        rows.append(to_prompt_completion(obj, where, f"{path.stem}-{line}"))
    return rows


def prompt_completion_ids(tokenizer, prompt: list[dict], completion: list[dict]) -> tuple[list[int], int]:
    """Token ids of prompt+completion rendered with the chat template, and the number of leading prompt
    tokens (masked in the loss). Same rule as TRL's SFTTrainer: the completion starts where the tokenized
    prompt (with the generation prompt) and the tokenized prompt+completion diverge."""
    p = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    full = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"]
    n = 0
    for a, b in zip(p, full):
        if a != b:
            break
        n += 1
    return list(full), n


# ---------------------------------------------------------------------------------------------- model

def _quiet_libraries(quiet: bool) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import datasets
        datasets.disable_progress_bars()
        import transformers
        transformers.logging.set_verbosity_error()
    except Exception:
        pass


def is_adapter_dir(p: str | Path) -> bool:
    p = Path(p)
    return p.is_dir() and (p / "adapter_config.json").is_file() and not (p / "config.json").is_file()


def resolve_any_model(name: str) -> str:
    """resolve_model, plus PEFT adapter folders (adapter_config.json, no config.json) passed through."""
    p = Path(name).expanduser()
    if is_adapter_dir(p):
        return str(p.resolve())
    return resolve_model(name)


def load_tokenizer(path: str, name: str | None = None, chat_template: str | None = None):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the tokenizer of model {name or path!r}: {str(e).splitlines()[0]}") from None
    if chat_template:
        ct = Path(chat_template)
        if ct.is_file():
            tok.chat_template = ct.read_text(encoding="utf-8")
        else:
            try:
                tok.chat_template = AutoTokenizer.from_pretrained(chat_template).chat_template
            except (OSError, ValueError) as e:
                raise UserError(f"cannot load chat template from {chat_template!r}: {str(e).splitlines()[0]}") from None
    if not getattr(tok, "chat_template", None):
        raise UserError(f"model {name or path!r} has no chat template; set finetune.chat_template to a "
                        "tokenizer folder/id or a .jinja file")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str, name: str | None = None, dtype=None):
    """A causal LM from a model folder/id, or base + adapter for a PEFT adapter folder (not merged)."""
    from transformers import AutoModelForCausalLM

    try:
        if is_adapter_dir(path):
            from peft import PeftModel
            base = json.loads((Path(path) / "adapter_config.json").read_text())["base_model_name_or_path"]
            model = AutoModelForCausalLM.from_pretrained(resolve_model(base), dtype=dtype)
            return PeftModel.from_pretrained(model, path)
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot load model {name or path!r}: {str(e).splitlines()[0]}") from None


def _device_setup(cfg: FinetuneConfig):
    import torch

    cuda = torch.cuda.is_available()
    precision = cfg.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    dtype_name = cfg.model_dtype
    if dtype_name == "auto":
        dtype_name = "bfloat16" if (cfg.lora.enabled and cuda and precision == "bf16") else "float32"
    return cuda, precision, getattr(torch, dtype_name)


# ---------------------------------------------------------------------------------------------- train

_MODEL_FILE_PATTERNS = ("config.json", "generation_config.json", "model*.safetensors", "model.safetensors.index.json",
                        "pytorch_model*.bin", "adapter_config.json", "adapter_model.*", "tokenizer*",
                        "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt",
                        "training_args.bin", "README.md", SUMMARY_FILE)


def _clear_outputs(out: Path) -> None:
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    shutil.rmtree(out / ADAPTER_SUBDIR, ignore_errors=True)
    for pat in _MODEL_FILE_PATTERNS:
        for f in out.glob(pat):
            if f.is_file():
                f.unlink()


def _has_outputs(out: Path) -> bool:
    if not out.is_dir():
        return False
    ck = out / CHECKPOINT_DIR
    return (out / "config.json").exists() or (out / "adapter_config.json").exists() or (
        ck.is_dir() and any(ck.glob("checkpoint-*")))


def build_trainer(cfg: FinetuneConfig, files: DataFiles, out_dir: str | Path, *, quiet: bool = False):
    """Load data, model and tokenizer; return (trainer, info). Raises UserError on bad input."""
    out_dir = Path(out_dir)
    train_rows = load_examples(files.train)
    if not train_rows:
        raise UserError("no training examples (the file is empty)", path=files.train)
    eval_rows = load_examples(files.eval) if files.eval is not None else []

    model_path = resolve_model(cfg.model)
    _quiet_libraries(quiet)
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cuda, precision, dtype = _device_setup(cfg)
    tok = load_tokenizer(model_path, cfg.model, cfg.chat_template)
    model = load_causal_lm(model_path, cfg.model, dtype=dtype)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False

    peft_config = None
    if cfg.lora.enabled:
        from peft import LoraConfig
        targets: Any = list(cfg.lora.target_modules)
        if targets == ["all-linear"]:
            targets = "all-linear"
        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                 target_modules=targets, bias="none", task_type="CAUSAL_LM")

    def as_dataset(rows):
        return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])

    train_ds = as_dataset(train_rows)
    eval_ds = as_dataset(eval_rows) if eval_rows else None
    eval_strategy = "steps" if (eval_ds is not None and cfg.eval_steps) else "no"
    args: dict[str, Any] = dict(
        output_dir=str(out_dir / CHECKPOINT_DIR),
        seed=cfg.seed, data_seed=cfg.seed,
        learning_rate=cfg.effective_lr(),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps else -1,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size or cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length,
        warmup_steps=cfg.warmup,
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=precision == "bf16", fp16=precision == "fp16",
        gradient_checkpointing=cfg.gradient_checkpointing,
        packing=cfg.packing,
        completion_only_loss=True,  # prompt tokens are masked (-100) in the labels
        assistant_only_loss=False,
        logging_steps=cfg.logging_steps, logging_first_step=True,
        eval_strategy=eval_strategy, eval_steps=cfg.eval_steps if eval_strategy == "steps" else None,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        report_to="none",
        disable_tqdm=quiet,
        dataloader_pin_memory=cuda,
    )
    args.update(cfg.sft_args)
    try:
        sft_args = SFTConfig(**args)
    except (ValueError, TypeError) as e:
        where = f" ({cfg.source})" if cfg.source else ""
        raise UserError(f"invalid training arguments{where}: {str(e).splitlines()[0]}") from None
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tok, peft_config=peft_config)
    if len(trainer.train_dataset) == 0:
        raise UserError(f"no training examples left after truncation to max_length={cfg.max_length}",
                        path=files.train)
    info = {"model_path": model_path, "precision": precision, "model_dtype": str(dtype).replace("torch.", ""),
            "train_examples": len(train_rows), "eval_examples": len(eval_rows), "device": "cuda" if cuda else "cpu"}
    return trainer, info


def _losses(log_history: list[dict]) -> tuple[list[float], list[float]]:
    train = [h["loss"] for h in log_history if "loss" in h]
    ev = [h["eval_loss"] for h in log_history if "eval_loss" in h]
    return train, ev


def _merge_from_adapter_dir(base_path: str, adapter_dir: Path, out: Path, dtype) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)


def run_finetune(cfg: FinetuneConfig, data: str | Path, out_dir: str | Path, *, eval_data: str | Path | None = None,
                 no_eval: bool = False, resume: bool = False, overwrite: bool = False, quiet: bool = False,
                 log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Fine-tune cfg.model on DATA and save the result to out_dir. Returns the summary (also written to
    out_dir/selfinstruct-finetune.json)."""
    out_dir = Path(out_dir)
    files = resolve_data(data, eval_data, no_eval)
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError("output exists and is not a directory", path=out_dir)
    last_ckpt = None
    if resume:
        from transformers.trainer_utils import get_last_checkpoint
        ck = out_dir / CHECKPOINT_DIR
        last_ckpt = get_last_checkpoint(str(ck)) if ck.is_dir() else None
        if last_ckpt is None:
            raise UserError("no checkpoint to resume from (checkpoints are deleted after a finished run unless "
                            "keep_checkpoints: true)", path=ck)
    elif _has_outputs(out_dir) and not overwrite:
        raise UserError("already holds a fine-tuned model or checkpoints: pass --overwrite to replace it, "
                        "or --resume to continue an interrupted run", path=out_dir)

    from accelerate import PartialState
    state = PartialState()
    if overwrite and state.is_main_process and out_dir.is_dir():
        _clear_outputs(out_dir)
    state.wait_for_everyone()

    t0 = time.time()
    trainer, info = build_trainer(cfg, files, out_dir, quiet=quiet)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the output directory: {e.strerror}", path=out_dir) from None
    main = trainer.accelerator.is_main_process
    if main:
        log(f"fine-tuning {cfg.model} ({'LoRA' if cfg.lora.enabled else 'full'}, {info['precision']}, "
            f"{info['device']}) on {info['train_examples']} examples from {files.train}"
            + (f", eval on {info['eval_examples']} from {files.eval}" if files.eval else ""))
    eval_before = eval_after = None
    has_eval = trainer.eval_dataset is not None
    if has_eval:
        eval_before = float(trainer.evaluate()["eval_loss"])
    result = trainer.train(resume_from_checkpoint=last_ckpt)
    if has_eval:
        eval_after = float(trainer.evaluate()["eval_loss"])

    # ---- save
    kind = "full"
    tok = trainer.processing_class
    base_model = trainer.accelerator.unwrap_model(trainer.model)
    text_config = base_model.config.get_text_config() if hasattr(base_model.config, "get_text_config") else None
    for c in {id(x): x for x in (base_model.config, text_config) if x is not None}.values():
        if hasattr(c, "use_cache"):
            c.use_cache = True  # training may turn the KV cache off; inference wants it on
    if cfg.lora.enabled and not cfg.lora.merge:
        kind = "adapter"
        trainer.save_model(str(out_dir))  # adapter_config.json + adapter_model.safetensors + tokenizer
    elif cfg.lora.enabled:
        kind = "merged"
        adapter_dir = out_dir / ADAPTER_SUBDIR
        trainer.save_model(str(adapter_dir))  # handles FSDP/DeepSpeed gathering
        if main:
            if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
                _merge_from_adapter_dir(info["model_path"], adapter_dir, out_dir, trainer.model.dtype)
            else:
                merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
                merged.save_pretrained(out_dir, safe_serialization=True)
            tok.save_pretrained(out_dir)
    else:
        trainer.save_model(str(out_dir))
    trainer.accelerator.wait_for_everyone()

    train_losses, eval_losses = _losses(trainer.state.log_history)
    summary = {
        "selfinstruct": __version__,
        "kind": kind,  # full | merged | adapter
        "base_model": cfg.model,
        "base_model_path": info["model_path"],
        "train_file": str(files.train),
        "eval_file": str(files.eval) if files.eval else None,
        "train_examples": info["train_examples"],
        "eval_examples": info["eval_examples"],
        "steps": trainer.state.global_step,
        "epochs": round(float(trainer.state.epoch or 0.0), 4),
        "train_loss_first": train_losses[0] if train_losses else None,
        "train_loss_last": train_losses[-1] if train_losses else None,
        "train_loss_mean": float(result.training_loss) if result.training_loss is not None else None,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "eval_losses": eval_losses,
        "precision": info["precision"],
        "device": info["device"],
        "resumed_from": last_ckpt,
        "runtime_s": round(time.time() - t0, 1),
        "config": cfg.to_dict(),
        "config_file": cfg.source,
    }
    if main:
        atomic_write_json(out_dir / SUMMARY_FILE, summary)
        if not cfg.keep_checkpoints:
            shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return summary


def _fmt(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def format_summary(s: dict[str, Any], out_dir: str | Path) -> str:
    rows = [
        ("examples", f"train {s['train_examples']}, eval {s['eval_examples']}"),
        ("steps", f"{s['steps']} ({s['epochs']} epochs, {s['runtime_s']} s)"),
        ("train loss", f"{_fmt(s['train_loss_first'])} -> {_fmt(s['train_loss_last'])} (first -> last logged)"),
    ]
    if s["eval_loss_before"] is not None:
        rows.append(("eval loss", f"{_fmt(s['eval_loss_before'])} -> {_fmt(s['eval_loss_after'])} (before -> after)"))
    what = {"full": "full model", "merged": "full model (LoRA merged)", "adapter": "LoRA adapter"}[s["kind"]]
    rows.append(("saved", f"{what} -> {out_dir}"))
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
