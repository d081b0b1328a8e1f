"""What a dataset card says about the run that made the data: a typed `RunFacts`, built by one function
(`run_facts`) from a run as `run/` reads it: run.json (config, models, seed file) and the manifests of the
stages before the one writing the card, summed up by `report` exactly as `stats` does.

The pipeline calls it with what it already holds (the run.json it wrote, the manifests of the stages it
completed) and hands the facts to the sink stage, which adds its own counts (`RunFacts.finished`: its
manifest is finished only after the card is written) and passes them to `card.write_card`, which only
renders. `facts_of_run` builds the same facts for a finished run folder, read with `run.reader.open_run`.

Nothing here names a local path: the card is meant to be published, so files are named by their name
and sha256."""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..evals.decontaminate import COUNT_KEYS, SOURCES, STAGE
from ..io.errors import UserError
from ..io.hashing import stable_hash
from ..io.records import Counts
from ..report.compute import EXPORT_STAGE, stage_section
from ..report.constraints import ConstraintSection, constraint_section
from ..report.judge import JudgeSection, judge_section
from ..report.sections import StageSection
from ..run.reader import Run, StageDir, open_run, seed_path
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
    stage: str = STAGE  # the stage that left them out (its rejects list them)


@dataclass
class SourceDocument:
    path: str  # relative to the folder the run read (`documents.path`)
    sha256: str
    chunks: int  # 0: not read (`rejected` says why)
    rejected: str | None = None


@dataclass
class SourceDocuments:
    """The user's documents a `documents` run read (its chunk rows and rejects)."""
    private: bool
    files: list[SourceDocument]


@dataclass(frozen=True)
class SourceDataset:
    """A dataset the run's records were made from (a labelled file the templates stage read, a human
    dataset given as seed tasks), with its licence."""
    role: str  # what the run did with it
    file: str  # its name (no local path)
    license: str


@dataclass
class RunFacts:
    name: str  # the run's name (its config's); a fixed one without run.json (the card names no local path)
    version: str  # of selfinstruct, which writes the card
    seed: int | None
    seed_file: str | None  # name only
    seed_sha256: str | None
    config_sha256: str | None  # of the run's config as run.json records it (secrets redacted)
    stage: str  # the stage writing the card
    stage_hash: str  # of that stage: its settings and, through its input, every stage before it
    stages: list[StageSection]  # in run order: the stages before it, then (once `finished`) itself
    models: list[ModelUse] = field(default_factory=list)
    judge: JudgeSection | None = None
    judge_settings: dict[str, Any] = field(default_factory=dict)
    decontamination: Decontamination | None = None
    constraints: ConstraintSection | None = None  # the verify stage's pass rates per constraint type
    settings: dict[str, Any] = field(default_factory=dict)  # this stage's config section
    documents: SourceDocuments | None = None  # a run made from the user's documents (the `documents` stage)
    datasets: list[SourceDataset] = field(default_factory=list)

    def finished(self, counts: Counts) -> "RunFacts":
        """These facts with the card's own stage last, counted as it is about to record (its manifest is
        finished after the card is written)."""
        this = StageDir(self.stage, Path(self.stage), {"stage": self.stage, "parts": [], "files": [],
                                                       "counts": counts.to_flat(), "complete": True})
        prev_out = self.stages[-1].rows_out if self.stages else None
        return dataclasses.replace(self, stages=[*self.stages, stage_section(this, prev_out)])


def _benchmark(source: dict[str, Any]) -> Benchmark:
    name = str(source.get("benchmark", "?"))
    return Benchmark(Path(name).name if "/" in name else name, int(source.get("prompts", 0)),
                     str(source.get("sha256", "")))


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


def _decontamination(run: Run) -> Decontamination | None:
    """What the run's decontaminate stage checked against and left out (its manifest's sources and reject
    counts); None without one."""
    stage = next((d for d in run.stages if d.name == STAGE and d.complete), None)
    if stage is None:
        return None
    left_out = stage.counts.reasons("record")
    return Decontamination([_benchmark(s) for s in stage.manifest.get(SOURCES) or []],
                           {reason: left_out.get(key, 0) for reason, key in COUNT_KEYS.items()})


def _documents(run: Run) -> SourceDocuments | None:
    """The files a `documents` stage read: each with its chunks (its rows), or the reason it gave none."""
    stage = next((d for d in run.stages if d.name == "documents"), None)
    if stage is None:
        return None
    files: dict[str, SourceDocument] = {}
    for row in stage.rows():
        c = row.get("chunk") or {}
        f = files.setdefault(str(c.get("path")), SourceDocument(str(c.get("path")), str(c.get("sha256")), 0))
        f.chunks += 1
    for row in stage.rows(rejects=True):
        path = str(row.get("path"))
        files[path] = SourceDocument(path, "", 0, str(row.get("reason")))
    private = (run.config.get("documents") or {}).get("private", True)
    return SourceDocuments(bool(private), sorted(files.values(), key=lambda f: f.path))


def _datasets(run: Run) -> list[SourceDataset]:
    from ..io.human import LICENSES, detect, read_rows
    out = []
    names = [d.name for d in run.stages]
    tpl = run.config.get("templates") or {}
    if "templates" in names and tpl.get("path"):
        out.append(SourceDataset("templated into instructions (FLAN-style)", Path(str(tpl["path"])).name,
                                 str(tpl.get("license") or "not stated (set templates.license)")))
    path = seed_path(run) if names and run.stages[0].generator else None
    if path is not None:
        try:
            first = next((o for _, o in read_rows(path) if isinstance(o, dict)), None)
        except UserError:
            first = None
        fmt = detect(first) if first else None
        if fmt in LICENSES:
            name, lic = LICENSES[fmt]
            out.append(SourceDataset(f"seed tasks ({fmt} format: {name})", path.name, lic))
    return out


def run_facts(run: Run, stage: str, stage_hash: str) -> RunFacts:
    """The facts of `run` for the card that stage `stage` writes; `run.stages`: the stages before it, in run
    order (what the pipeline completed, or what `facts_of_run` read). Add the stage's own counts with
    `finished`."""
    sections: list[StageSection] = []
    prev_out = None
    for d in run.stages:
        sections.append(stage_section(d, prev_out))
        prev_out = sections[-1].rows_out
    cfg = run.config
    seed_file, seed_sha = _seed(run)
    facts = RunFacts(
        name=str(cfg.get("name") or UNNAMED), version=__version__, seed=cfg.get("seed"), seed_file=seed_file,
        seed_sha256=seed_sha, config_sha256=stable_hash(cfg) if cfg else None, stage=stage, stage_hash=stage_hash,
        stages=sections, models=_models(run.info, [d.name for d in run.stages] + [stage]), judge=judge_section(run),
        decontamination=_decontamination(run), constraints=constraint_section(run),
        settings=dict(cfg.get(stage) or {}), documents=_documents(run), datasets=_datasets(run))
    if facts.judge is not None:
        judge_cfg = cfg.get("judge") or {}
        facts.judge_settings = {k: judge_cfg[k] for k in JUDGE_SETTINGS if k in judge_cfg}
        if judge_cfg.get("template"):
            facts.judge_settings["rubric"] = "a custom template"
    return facts


def facts_of_run(run_dir: Path, stage: str = EXPORT_STAGE) -> RunFacts:
    """The facts of a finished run folder for the card of its stage `stage` (as the pipeline passed them
    when that stage ran)."""
    run = open_run(Path(run_dir))
    names = [d.name for d in run.stages]
    if stage not in names or not run.stages[names.index(stage)].complete:
        raise UserError(f"no complete {stage} stage: nothing to describe", path=run_dir)
    sink = run.stages[names.index(stage)]
    before = Run(run.path, run.info, run.stages[:names.index(stage)])
    facts = run_facts(before, stage, str(sink.manifest["config_hash"])).finished(sink.counts)
    if facts.decontamination is None and "decontaminate" in sink.manifest:
        # a run made before the decontaminate stage: its export's own setting left the records out
        facts.decontamination = Decontamination([_benchmark(s) for s in sink.manifest["decontaminate"]],
                                                {r: sink.counts[k] for r, k in COUNT_KEYS.items()}, stage)
    return facts
