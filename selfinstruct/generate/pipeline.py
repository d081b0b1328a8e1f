"""Runs the configured stages in order. Each stage's shard set is keyed by a hash of its config, its
model's fingerprint, its prompt template version, the global seed and the content of its input, so a
re-run resumes exactly where it stopped, and a changed config is refused instead of being mixed in."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends import Backend
from ..backends.chat import CHAT_RENDERER
from ..io.console import library_output_to
from ..io.errors import UserError
from ..io.hashing import stable_hash
from ..io.jsonl import atomic_write_json
from ..io.records import Counts
from ..io.lock import RunLock
from ..io.secrets import redact_all
from ..io.seeds import load_seed_tasks
from ..io.shards import SCHEMA, StageStore, check_existing, parts_digest
from ..provenance import library_versions
from ..run.reader import StageDir
from .config import PipelineConfig
from .context import Context
from .engines import Engines
from .executor import run_batch_stage
from .executors import executor_spec
from .plugins import get_stage
from .rounds import RoundsRunner
from .stage import BatchStage, RoundsStage, SinkStage, Stage

if TYPE_CHECKING:
    from ..hub.facts import RunFacts


LOG_FILE = "selfinstruct.log"  # with -q: what vLLM, torch and other libraries print


def resolve_seed_path(cfg: PipelineConfig) -> Path:
    """The seed file as given, else relative to the config file's folder or the one above it."""
    p = Path(cfg.seed_tasks).expanduser()
    if p.is_absolute() or p.exists() or not cfg.source:
        return p
    for base in (Path(cfg.source).resolve().parent, Path(cfg.source).resolve().parent.parent):
        if (base / p).exists():
            return base / p
    return p


def stage_hash(cfg: PipelineConfig, stage: str, input_digest: str, model: dict[str, Any] | None) -> str:
    cls = get_stage(stage)
    code = {"code": cls.code_version} if cls.code_version else {}  # (0: the hash of runs before code versions)
    return stable_hash({"schema": SCHEMA, "stage": stage, "config": dataclasses.asdict(cfg.stage(stage)),
                        "model": model, "template": cls.template_version, "seed": cfg.seed,
                        "input": input_digest, "renderer": CHAT_RENDERER if model else None, **code})


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"output directory is not writable: {e.strerror}", path=out) from None


@dataclass
class StageSummary:
    rows: int
    counts: Counts
    seconds: float


def run_pipeline(cfg: PipelineConfig, out: Path, *, force: bool = False, quiet: bool = False,
                 backend: Backend | None = None) -> dict[str, StageSummary]:
    """`backend`: the caller's backend for every model stage (used, not closed)."""
    out = Path(out)
    executor_spec(cfg.executor).require()  # before anything runs: one line naming what to install
    first = get_stage(cfg.stages[0])
    # a source stage reads another run (its hash keys the first stage); a generator reads the seed tasks
    seed_path = None if first.source else resolve_seed_path(cfg)
    seeds = load_seed_tasks(seed_path) if seed_path is not None else []
    ctx = Context(cfg=cfg, run_dir=out, seeds=seeds, engines=Engines(cfg, backend), quiet=quiet)
    ctx.engines.log = ctx.log
    model_stages = [s for s in cfg.stages if get_stage(s).uses_model]
    models = {s: ctx.engines.fingerprint(s) for s in model_stages}  # fails fast on a bad model path
    versions = library_versions()
    check_writable(out)
    with RunLock(out):
        digest = (first.input_digest(cfg.stage(cfg.stages[0])) if seed_path is None
                  else hashlib.sha256(seed_path.read_bytes()).hexdigest())
        if not force:
            check_resumable(cfg, out, digest, models)  # a refused re-run leaves run.json as it was
        ctx.info = redact_all({
            "schema": SCHEMA, "versions": versions, "config": cfg.to_dict(), "config_file": cfg.source,
            "seed_tasks": str(seed_path) if seed_path is not None else None,
            "seed_sha256": digest if seed_path is not None else None, "models": models})
        atomic_write_json(out / "run.json", ctx.info)
        with library_output_to(out / LOG_FILE) if quiet else contextlib.nullcontext():
            return _run_stages(ctx, out, digest, models, versions, force=force, own_backends=backend is None)


def check_resumable(cfg: PipelineConfig, out: Path, digest: str, models: dict[str, Any]) -> None:
    """The stage folders already there match this configuration (as far as their inputs are known). The
    parts are verified when each stage is opened, not here: that would read every shard twice."""
    for name in cfg.stages:
        m = check_existing(out / name, stage_hash(cfg, name, digest, models.get(name)), verify=False)
        if m is None or not m.get("complete"):
            return
        digest = parts_digest(m)


def _run_stages(ctx: Context, out: Path, digest: str, models: dict[str, Any], versions: dict[str, Any], *,
                force: bool, own_backends: bool) -> dict[str, StageSummary]:
    cfg = ctx.cfg
    summary: dict[str, StageSummary] = {}
    prev = None
    try:
        for i, name in enumerate(cfg.stages):
            cls = get_stage(name)
            store = StageStore(out, name, stage_hash(cfg, name, digest, models.get(name)), force=force,
                               keep=cls.user_files)
            t0 = time.time()
            if store.complete:
                ctx.log(f"{name}: already complete ({store.num_rows()} rows), skipping")
            else:
                # which model wrote this stage's fields (the record keeps its own layout on disk)
                store.manifest["provenance"] = {"model": models.get(name), "writes": sorted(cls.writes),
                                                "versions": versions}
                run_stage(cls(ctx, cfg.stage(name)), store, prev)
            summary[name] = StageSummary(store.num_rows(), store.totals(), round(time.time() - t0, 1))
            ctx.done.append(StageDir(name, store.dir, store.manifest))  # what a sink's facts are built from
            digest, prev = store.digest(), store
            if own_backends:
                ctx.engines.release(cfg.stages[i + 1:], lambda s: get_stage(s).uses_model)
    finally:
        if own_backends:
            ctx.engines.close()
    return summary


def run_stage(stage: Stage, store: StageStore, inputs: StageStore | None) -> None:
    """One stage, run by its shape: the runners are the pipeline's, a stage only says what it does."""
    if isinstance(stage, SinkStage):
        store.finish_files(*stage.write(inputs, store, sink_facts(stage, store)))
    elif isinstance(stage, RoundsStage):
        RoundsRunner(stage, store).run()
    elif isinstance(stage, BatchStage):
        stage.begin(store, inputs)
        run_batch_stage(stage, store, stage.input(inputs))
    else:
        stage.run(store, inputs)  # a stage of its own shape


def sink_facts(stage: SinkStage, store: StageStore) -> RunFacts:
    """The facts a sink's dataset card states, from what this run holds: the run.json it wrote and the
    manifests of the stages completed before the sink (nothing is read back from run.json)."""
    from ..hub.facts import run_facts  # (huggingface_hub, for the models' licenses: only when a sink runs)

    return run_facts(stage.ctx.run_so_far(), stage.name, store.config_hash)


def format_summary(summary: dict[str, StageSummary]) -> str:
    lines = []
    for stage, info in summary.items():
        drops = sorted(info.counts.reasons().items(), key=lambda kv: -kv[1])
        extra = ", ".join(f"{k}={v}" for k, v in drops)
        lines.append(f"{stage:<10} rows={info.rows:<6} {('drops: ' + extra) if extra else ''}".rstrip())
        more = {k: v for k, v in info.counts.tallies.items() if k != "kept"}
        if more:
            lines.append("           " + ", ".join(f"{k}={v}" for k, v in more.items()))
    return "\n".join(lines)
