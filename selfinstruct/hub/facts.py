"""What a dataset card says about the run that made the data, collected from the run directory when the
stage that writes the card runs: run.json (config, models, seed file) and the manifests of the stages
before it, read and summed up by `report` exactly as `stats` does. That stage's own counts come from the
stage itself: its manifest is finished only after the card is written.

Nothing here names a local path: the card is meant to be published, so files are named by their name
and sha256."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..evals.decontaminate import COUNT_KEYS
from ..io.hashing import stable_hash
from ..io.records import Counts
from ..io.shards import MANIFEST, StageStore
from ..report.compute import stage_section
from ..report.judge import JudgeSection, judge_section
from ..run.reader import Run, StageDir, configured_stages, read_run_info, read_stage, seed_path, stage_names
from ..report.sections import StageSection
from .licenses import ModelLicense, model_license

UNNAMED = "selfinstruct export"
JUDGE_SETTINGS = ("rubric", "samples", "aggregate", "structured", "sanity_share")


@dataclass(frozen=True)
class ModelUse:
    stage: str
    model: str
    backend: str | None
    license: ModelLicense


@dataclass(frozen=True)
class Benchmark:
    name: str  # the benchmark's name, or its file's name
    prompts: int
    sha256: str


@dataclass
class Decontamination:
    benchmarks: list[Benchmark]
    left_out: dict[str, int]  # reason (rouge, ngram) -> records left out


@dataclass
class RunFacts:
    name: str  # the run's name (its config's); a fixed one without run.json (the card names no local path)
    version: str  # of selfinstruct, which writes the card
    seed: int | None
    seed_file: str | None  # name only
    seed_sha256: str | None
    config_sha256: str | None  # of the run's config as run.json records it (secrets redacted)
    stage_hash: str  # of the stage writing the card: its settings and, through its input, every stage before
    stages: list[StageSection]  # in run order, this stage last
    models: list[ModelUse] = field(default_factory=list)
    judge: JudgeSection | None = None
    judge_settings: dict[str, Any] = field(default_factory=dict)
    decontamination: Decontamination | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # this stage's config section


def _benchmark(source: dict[str, Any]) -> Benchmark:
    name = str(source.get("benchmark", "?"))
    return Benchmark(Path(name).name if "/" in name else name, int(source.get("prompts", 0)),
                     str(source.get("sha256", "")))


def _stage_dirs(store: StageStore, counts: Counts, info: dict[str, Any]) -> list[StageDir]:
    """The stages that ran before this one (the run's configured order, else every stage folder), then this
    one with the counts it is about to record."""
    run_dir = store.dir.parent
    configured = configured_stages(info)
    if store.stage in configured:
        before = [s for s in configured[:configured.index(store.stage)] if (run_dir / s / MANIFEST).is_file()]
    else:
        before = [s for s in stage_names(run_dir) if s != store.stage]
    this = StageDir(store.stage, store.dir, dict(store.manifest, counts=counts.to_flat(), complete=True))
    return [read_stage(run_dir / s) for s in before] + [this]


def _models(info: dict[str, Any], stages: list[str]) -> list[ModelUse]:
    cfg, fingerprints = info.get("config") or {}, info.get("models") or {}
    licenses: dict[str, ModelLicense] = {}
    out = []
    for stage in stages:
        fp = fingerprints.get(stage)
        if not isinstance(fp, dict) or not fp.get("name"):
            continue
        name = str(fp["name"])
        if name not in licenses:
            licenses[name] = model_license(name)
        backend = fp.get("backend") or (cfg.get(stage) or {}).get("backend") or cfg.get("backend")
        out.append(ModelUse(stage, name, backend, licenses[name]))
    return out


def _seed(run: Run) -> tuple[str | None, str | None]:
    """The seed file's name and sha256: as run.json records it, else hashed from the file if it is found."""
    recorded = run.info.get("seed_tasks") or run.config.get("seed_tasks")
    digest = run.info.get("seed_sha256")
    if digest is None and recorded:
        path = seed_path(run)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None
    return (Path(str(recorded)).name if recorded else None), digest


def collect_facts(store: StageStore, counts: Counts) -> RunFacts:
    """The facts of the run of `store` (a stage folder directly under its run directory)."""
    run_dir = store.dir.parent
    info = read_run_info(run_dir)
    dirs = _stage_dirs(store, counts, info)
    run = Run(run_dir, info, dirs)
    sections: list[StageSection] = []
    prev_out = None
    for d in dirs:
        sections.append(stage_section(d, prev_out))
        prev_out = sections[-1].rows_out
    cfg = run.config
    seed_file, seed_sha = _seed(run)
    facts = RunFacts(
        name=str(cfg.get("name") or UNNAMED), version=__version__, seed=cfg.get("seed"), seed_file=seed_file,
        seed_sha256=seed_sha, config_sha256=stable_hash(cfg) if cfg else None, stage_hash=store.config_hash,
        stages=sections, models=_models(info, [d.name for d in dirs]), judge=judge_section(run),
        settings=dict(cfg.get(store.stage) or {}))
    if facts.judge is not None:
        judge_cfg = cfg.get("judge") or {}
        facts.judge_settings = {k: judge_cfg[k] for k in JUDGE_SETTINGS if k in judge_cfg}
        if judge_cfg.get("template"):
            facts.judge_settings["rubric"] = "a custom template"
    if "decontaminate" in store.manifest:  # the export checked against benchmarks (zero found counts too)
        facts.decontamination = Decontamination(
            [_benchmark(s) for s in store.manifest["decontaminate"]],
            {reason: counts[key] for reason, key in COUNT_KEYS.items()})
    return facts
