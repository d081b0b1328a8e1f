"""The pipeline configuration: the top-level settings, one section per registered backend and executor
(its options) and one per registered stage (its `Config`). Sections come from the registries, so a new
stage, backend or executor adds its section without touching this file. Loading: YAML < `--set key=value` <
dedicated command-line flags; every error names file:line and the field."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..backends import backends
from ..hub import BEGIN, END
from ..io.errors import UserError
from ..io.settings import (SEED_MAX, Err, Option, apply_overrides, build, error_reporter, options_of, parse_set,
                           public_fields, read_yaml, setting, to_dict, unknown_key)
from ..models import EMBEDDED_MODEL
# re-exported: the stage settings' old home, which stage plugins import (docs/ARCHITECTURE.md)
from .options import InstructionFilters, Sampling, StageModel  # noqa: F401
from .executors import executors
from .plugins import stages as registered_stages


@dataclass
class PipelineConfig:
    name: str = setting("default", help="run name (default run directory: runs/NAME)")
    seed: int = setting(42, min=0, max=SEED_MAX, flag="--seed", help="global seed; per-request seeds derive from it")
    model: str = setting(EMBEDDED_MODEL, flag="--model",
                         help="HF model id or local path (default: the embedded SmolLM2-135M-Instruct)")
    backend: str = setting("vllm", flag="--backend",
                           help="vllm: in-process engine; openai: any OpenAI-compatible server (`vllm serve`)")
    seed_tasks: str = setting("seed_tasks/seed_tasks.jsonl", help="seed task file (JSONL or Alpaca JSON)")
    stages: list[str] = setting(factory=lambda: ["bootstrap", "classify", "instances", "filter", "export"],
                                help="stages in order")
    executor: str = setting("local", flag="--executor",
                            help="where the engines run: local (this process's backend) or a registered "
                                 "executor, e.g. ray (engine replicas on a Ray cluster: batch stages as Ray "
                                 "Data jobs, the generator's requests fanned out; pip install -e '.[ray]'); "
                                 "its settings are the section of its name")
    max_consecutive_failures: int = setting(20, min=1, help="stop the run (re-run resumes) when this many "
                                                             "requests fail in a row: the server is down")
    sections: dict[str, Any] = setting(factory=dict, internal=True)  # backend options and stage configs
    source: str | None = setting(None, internal=True)  # the file it was loaded from

    def __getattr__(self, name: str) -> Any:  # cfg.bootstrap, cfg.vllm, ...
        sections = self.__dict__.get("sections") or {}
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def stage(self, name: str) -> Any:
        return self.sections[name]

    def model_of(self, stage: str) -> str:
        return getattr(self.stage(stage), "model", None) or self.model

    def backend_of(self, stage: str) -> str:
        return getattr(self.stage(stage), "backend", None) or self.backend

    def backend_options(self, stage: str) -> Any:
        """The options of the stage's backend, with the stage's own server URLs when it sets them."""
        opts = self.sections[self.backend_of(stage)]
        urls = getattr(self.stage(stage), "base_urls", None)
        if urls and hasattr(opts, "base_urls"):
            opts = dataclasses.replace(opts, base_urls=list(urls))
        return opts

    def to_dict(self) -> dict[str, Any]:
        d = to_dict(self)
        d.update((name, dataclasses.asdict(sec)) for name, sec in self.sections.items())
        return d

    def check(self, err: Err) -> None:
        if self.executor not in executors():
            err("executor", f"must be one of {', '.join(sorted(executors()))}, got {self.executor!r}")
        known = backends()
        for stage_name in ["", *self.stages]:
            b = self.backend if not stage_name else getattr(self.sections.get(stage_name), "backend", None)
            if b is not None and b not in known:
                where = f"{stage_name}.backend" if stage_name else "backend"
                err(where, f"must be one of {', '.join(sorted(known))}, got {b!r}")
        check_wiring(self.stages, err, self.sections)
        # the dataset card quotes settings (the name, export.system_prompt, model and file names): a marker of
        # its generated section among them would leave the card "damaged" for the next export
        for where, text in _strings(self.to_dict()):
            for marker in (BEGIN, END):
                if marker in text:
                    err(where, f"must not contain {marker!r}, a marker of the dataset card, which quotes settings")


def _strings(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field, value) of every string in a config's dict, fields named as errors name them."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _strings(v, f"{path}[{i}]")


def default_run_dir(cfg: PipelineConfig) -> Path:
    """runs/NAME, where a run goes when no directory is given: NAME must stay one folder inside runs/."""
    if cfg.name in ("", ".", "..") or any(sep in cfg.name for sep in ("/", "\\")):
        raise UserError(f"{cfg.name!r} cannot name the run directory runs/NAME: it must be one folder name (no path "
                        "separator, not '..'); rename the run, or give the directory with -o", path=cfg.source,
                        field="name")
    return Path("runs") / cfg.name


def check_wiring(names: list[str], err: Err, sections: dict[str, Any] | None = None) -> None:
    """The stage list is valid when it starts with a generator, every stage finds the record fields it
    reads among those written before it, and nothing follows a stage that writes no records."""
    registered = registered_stages()
    if not names:
        err("stages", "no stages")
    fields: set[str] = set()
    for i, name in enumerate(names):
        if name not in registered:
            err(f"stages[{i}]", f"unknown stage {name!r}; registered: {', '.join(registered)}")
        st = registered[name]
        if names.count(name) > 1:
            err("stages", f"stage {name!r} appears twice")
        if i == 0 and not (st.generator or st.source):
            gens = [n for n, s in registered.items() if s.generator]
            sources = [n for n, s in registered.items() if s.source]
            err("stages", f"unsupported stage list {names}: it must start with a generator stage "
                          f"({' or '.join(gens)}), e.g. [bootstrap, classify, instances, filter, export]"
                          + (f", or a stage that reads another run ({' or '.join(sources)})" if sources else ""))
        if i > 0 and st.generator:
            err("stages", f"unsupported stage list {names}: {name!r} generates instructions; it can only come first")
        if i > 0 and st.source:
            err("stages", f"unsupported stage list {names}: {name!r} reads another run; it can only come first")
        missing = sorted(st.reads_for((sections or {}).get(name)) - fields)
        if missing:
            err("stages", f"unsupported stage list {names}: {name!r} reads {', '.join(missing)}, "
                          "which no earlier stage writes")
        for before in sorted(st.after):
            if before not in names[:i]:
                err("stages", f"unsupported stage list {names}: {name!r} must come after {before!r}")
        if i > 0 and registered[names[i - 1]].sink:
            err("stages", f"unsupported stage list {names}: nothing can follow {names[i - 1]!r}")
        fields = (fields - st.removes) | st.writes


def section_classes() -> dict[str, type]:
    """Every config section: backend options, executor options, then stage configs, by name."""
    out = {name: spec.options for name, spec in backends().items()}
    out.update((name, spec.options) for name, spec in executors().items() if spec.options is not None)
    out.update((name, st.Config) for name, st in registered_stages().items())
    return out


def build_config(data: dict[str, Any], err: Err) -> PipelineConfig:
    classes = section_classes()
    top = {k: v for k, v in data.items() if k not in classes}
    allowed = set(public_fields(PipelineConfig)) | set(classes)
    for key in top:
        if key not in allowed:  # listing the sections too (build would list the top-level keys only)
            unknown_key(err, str(key), key, allowed)
    sections = {}
    for name, cls in classes.items():
        raw = data.get(name)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            err(name, f"expected a mapping, got {type(raw).__name__}")
        sections[name] = build(cls, raw, err, name)
    cfg = build(PipelineConfig, top, err)  # checks the top-level keys and the stage wiring
    cfg.sections = sections
    cfg.check(err)  # again, now that the stages' own backends are known
    return cfg


def pipeline_flags() -> list[Option]:
    """The dedicated `generate` flags: the flagged top-level settings, then those of the executors'
    sections (`--ray-address`)."""
    return options_of(PipelineConfig, only_flagged=True) + [
        o for name, spec in executors().items() if spec.options is not None
        for o in options_of(spec.options, only_flagged=True, prefix=f"{name}.")]


def load_config(path: str | Path, overrides: dict[str, Any] | None = None, sets: tuple[str, ...] | list[str] = ()
                ) -> PipelineConfig:
    """YAML, then `--set` items, then `overrides` (dedicated flags: dotted keys, None = not given)."""
    path = Path(path)
    data, lines = read_yaml(path)
    apply_overrides(data, dict(parse_set(s) for s in sets), lines)
    apply_overrides(data, {k: v for k, v in (overrides or {}).items() if v is not None}, lines)
    cfg = build_config(data, error_reporter(path, lines))
    cfg.source = str(path)
    return cfg

