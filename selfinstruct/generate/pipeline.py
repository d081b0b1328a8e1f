"""Runs the configured stages in order. Each stage's shard set is keyed by a hash of its config, the
model, its prompt template version, the global seed and the content of its input, so a re-run resumes
exactly where it stopped, and a changed config is refused instead of being mixed in."""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

from .. import __version__
from .config import PipelineConfig, stable_hash
from .context import Context
from ..io.errors import UserError
from ..io.jsonl import atomic_write_json
from ..models import resolve_model
from .prompts import TEMPLATE_VERSION
from .seeds import load_seed_tasks
from ..io.shards import StageStore


def resolve_seed_path(cfg: PipelineConfig) -> Path:
    p = Path(cfg.seed_tasks).expanduser()
    if p.is_absolute() or p.exists() or not cfg.source:
        return p
    alt = Path(cfg.source).resolve().parent / p
    if alt.exists():
        return alt
    alt = Path(cfg.source).resolve().parent.parent / p
    return alt if alt.exists() else p


def stage_hash(cfg: PipelineConfig, stage: str, input_digest: str) -> str:
    return stable_hash({"stage": stage, "config": dataclasses.asdict(cfg.stage(stage)), "model": cfg.model,
                        "template": TEMPLATE_VERSION.get(stage), "seed": cfg.seed, "input": input_digest})


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"output directory is not writable: {e.strerror}", path=out) from None


def run_pipeline(cfg: PipelineConfig, out: Path, *, force: bool = False, quiet: bool = False,
                 backend=None) -> dict[str, Any]:
    out = Path(out)
    seed_path = resolve_seed_path(cfg)
    seeds = load_seed_tasks(seed_path)
    if cfg.backend == "vllm" and backend is None:
        resolve_model(cfg.model)  # fail fast on a bad model path, before anything is written
    check_writable(out)

    def factory():
        from ..backends import make_backend
        return make_backend(cfg, resolve_model(cfg.model))

    ctx = Context(cfg=cfg, run_dir=out, seeds=seeds, backend_factory=factory, quiet=quiet)
    if backend is not None:  # the caller's backend: used, not closed
        ctx.backend_factory, ctx._backend = (lambda: backend), None
    atomic_write_json(out / "run.json", {"selfinstruct": __version__, "config": cfg.to_dict(),
                                         "config_file": cfg.source, "seed_tasks": str(seed_path)})
    digest = hashlib.sha256(seed_path.read_bytes()).hexdigest()
    from .stages import STAGES

    summary: dict[str, Any] = {}
    prev = None
    try:
        for name in cfg.stages:
            store = StageStore(out, name, stage_hash(cfg, name, digest), force=force)
            t0 = time.time()
            if store.complete:
                ctx.log(f"{name}: already complete ({store.num_rows()} rows), skipping")
            else:
                STAGES[name](ctx, store, prev)
            summary[name] = {"rows": store.num_rows(), "counts": dict(store.counts),
                             "seconds": round(time.time() - t0, 1)}
            digest, prev = store.digest(), store
    finally:
        if backend is None:
            ctx.close()
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = []
    for stage, info in summary.items():
        c = info["counts"]
        rej = {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith(("reject:", "instance:", "note:"))}
        extra = ", ".join(f"{k}={v}" for k, v in sorted(rej.items(), key=lambda kv: -kv[1]))
        lines.append(f"{stage:<10} rows={info['rows']:<6} {('drops: ' + extra) if extra else ''}".rstrip())
        more = {k: v for k, v in c.items() if not k.startswith(("reject:", "instance:", "note:"))
                and k not in ("kept",)}
        if more:
            lines.append("           " + ", ".join(f"{k}={v}" for k, v in more.items()))
    return "\n".join(lines)
