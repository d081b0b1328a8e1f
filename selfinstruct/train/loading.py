"""Loading models and tokenizers for training and evaluation: model names (the embedded alias, HF ids,
folders, PEFT adapter folders), the chat template, and the device and dtype for inference.

torch / transformers / peft are imported inside the functions: `selfinstruct --help` stays fast.
"""
from __future__ import annotations

import gc
import json
import os
from pathlib import Path

from ..io.errors import UserError
from ..models import cache_dir, resolve_model

SUMMARY_FILE = "selfinstruct-finetune.json"  # written by `finetune` into the model folder


def quiet_libraries() -> None:
    """No progress bars from datasets, only errors from transformers' logging."""
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


def merged_adapter(adapter_dir: str | Path, digest: str) -> str:
    """A full model folder for a PEFT adapter folder: the adapter merged into its base, saved once in the
    cache under `digest` (the adapter's fingerprint), for engines that load plain folders (vLLM here)."""
    out = cache_dir() / "merged" / digest[:16]
    if (out / "config.json").is_file():
        return str(out)
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    # a folder of this process's own: two runs merging the same adapter never write into each other's
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent))
    try:
        model = load_causal_lm(str(adapter_dir)).merge_and_unload()
        model.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer(str(adapter_dir)).save_pretrained(tmp)
        tmp.rename(out)  # whole or not at all
    except OSError:
        if not (out / "config.json").is_file():  # not "another run finished the same merge first"
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


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



def recorded_base_model(tuned: str | Path) -> str | None:
    """The base model named in a fine-tuned folder's selfinstruct-finetune.json, if any."""
    f = Path(tuned) / SUMMARY_FILE
    if f.is_file():
        try:
            return json.loads(f.read_text()).get("base_model")
        except (OSError, ValueError):
            return None
    return None


def max_positions(path: str | Path) -> int | None:
    """max_position_embeddings from a model folder's config.json (None when unknown)."""
    try:
        cfg_path = Path(path) / "config.json"
        if cfg_path.is_file():
            cfg = json.loads(cfg_path.read_text())
            return cfg.get("max_position_embeddings") or (cfg.get("text_config") or {}).get("max_position_embeddings")
    except (OSError, ValueError):
        pass
    return None


def load_for_inference(path: str, name: str):
    """(tokenizer, model) in eval mode on the GPU if there is one (its own dtype), else on CPU in float32."""
    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float32 if dev.type == "cpu" else "auto"
    tok = load_tokenizer(path, name)
    model = load_causal_lm(path, name, dtype=dtype).to(dev).eval()
    return tok, model


def free_memory() -> None:
    """Collect garbage and return cached GPU memory (after dropping a model)."""
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
