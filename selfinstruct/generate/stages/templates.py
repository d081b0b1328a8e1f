"""FLAN-style instructions from a labelled dataset (a source stage, no model): every row of a local JSONL,
CSV or Parquet file (or a folder `datasets.load_dataset` opens) rendered through one of several
instruction templates of its task (generate/templates_library.py, and the config's own `templates:` in
Jinja2, sandboxed), the kind and the template drawn per row from the run's seed, as FLAN mixed
zero-shot, few-shot, options and inverted templates.

A share of the rows (`eval_fraction`, drawn by a hash of the row) is held out: those records carry
`split: eval`, which `export` follows, and a few-shot prompt takes its exemplars from the other rows
only, so no held-out row is ever shown as an exemplar. A row missing a field, or with a label that is
not one of `label_names`, is a reject naming the file, its line and the field."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ...backends.base import Completion
from ...io.errors import UserError
from ...io.hashing import in_share, stable_hash
from ...io.records import Instance, Record, Reject
from ...io.settings import setting
from ..options import derive_seed
from ..registry import register_stage
from ..stage import BatchStage, SourceRecords, StageResult
from ..templates_library import FIELDS, KINDS, LABELLED, LIBRARY, TASK_TYPES, kinds_of, render

SUFFIX_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class Task:
    type: str = setting("classification", choices=TASK_TYPES, help="the task the labels answer")
    name: str = setting("category", help="what the label is, in words (\"sentiment\", \"topic\"): the templates say it")
    inputs: dict[str, str] = setting(factory=dict, help="template field -> the dataset's column (default: the "
                                                        "task's fields by their own names: text; premise, "
                                                        "hypothesis; question, context)")
    label: str = setting("label", help="the column of the label (the answer, summary or translation)")
    label_names: list[str] | None = setting(None, help="classification/nli: the label names; integer labels index "
                                                       "them (default: the labels found, sorted)")
    source_language: str = setting("English", help="translation: the language of the input")
    target_language: str = setting("French", help="translation: the language of the label")


@dataclass
class UserTemplate:
    kind: str = setting("zero_shot", choices=KINDS)
    instruction: str = setting("", help="Jinja2 (sandboxed): the row's fields, label, options, exemplars, task")
    input: str = setting("", help="Jinja2: the example's input")
    output: str = setting("{{ label }}", help="Jinja2: the example's answer")


@dataclass
class TemplatesConfig:
    path: str | None = setting(None, help="the labelled dataset: a .jsonl, .json, .csv or .parquet file, or a folder "
                                          "datasets.load_dataset opens")
    task: Task = setting(factory=Task)
    kinds: list[str] = setting(factory=lambda: list(KINDS), help="the template kinds drawn from (those the task has)")
    shots: int = setting(3, min=1, max=16, help="exemplars of a few-shot prompt (from the train rows)")
    templates: list[UserTemplate] = setting(factory=list, help="templates of your own, added to the built-in ones")
    builtin: bool = setting(True, help="false: your templates only")
    eval_fraction: float = setting(0.1, min=0.0, max=0.9, help="share of the rows held out (split: eval)")
    limit: int | None = setting(None, min=1, help="only the first N rows")
    license: str | None = setting(None, help="the dataset's licence, stated in the dataset card")
    batch_size: int = setting(256, min=1, help="rows per shard")

    def check(self, err) -> None:
        usable = [k for k in self.kinds if k in kinds_of(self.task.type) or any(t.kind == k for t in self.templates)]
        if not usable:
            err("kinds", f"none of {self.kinds} has a template for a {self.task.type} task "
                         f"(built-in: {', '.join(kinds_of(self.task.type))})")
        if not self.builtin and not self.templates:
            err("builtin", "with builtin: false, give templates of your own")
        for i, t in enumerate(self.templates):
            try:
                from ..templates_library import compiled
                for part in (t.instruction, t.input, t.output):
                    compiled(part)
            except Exception as e:  # a Jinja2 syntax error: named at load, not after the first rows
                err(f"templates[{i}]", f"not a valid Jinja2 template: {e}")


def data_path(cfg: TemplatesConfig) -> Path:
    if not cfg.path:
        raise UserError("templates.path is not set: name the labelled dataset (--set templates.path=FILE)")
    p = Path(cfg.path).expanduser()
    if not p.exists():
        raise UserError("labelled dataset not found", path=p)
    return p


def load_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line, row) of every row: line as the file numbers it (a CSV's header is line 1)."""
    from datasets import load_dataset, load_from_disk
    offset = {".csv": 2, ".jsonl": 1}.get(path.suffix.lower(), 1)
    try:
        if path.is_dir():
            ds = load_from_disk(str(path)) if (path / "dataset_info.json").is_file() else load_dataset(str(path),
                                                                                                     split="train")
        elif path.suffix.lower() in SUFFIX_BUILDERS:
            ds = load_dataset(SUFFIX_BUILDERS[path.suffix.lower()], data_files=str(path), split="train")
        else:
            raise UserError(f"not a supported file ({', '.join(SUFFIX_BUILDERS)}) or dataset folder", path=path)
    except UserError:
        raise
    except Exception as e:  # datasets' parse errors: one line, not its traceback
        raise UserError(f"cannot read it as a dataset: {str(e).splitlines()[0][:200]}", path=path) from None
    if hasattr(ds, "keys") and not hasattr(ds, "column_names"):  # a DatasetDict: its train split
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    return [(i + offset, dict(row)) for i, row in enumerate(ds)]


@register_stage
class Templates(BatchStage):
    name = "templates"
    Config = TemplatesConfig
    template_version = "templates-v1"  # templates_library.LIBRARY
    writes = frozenset({"instruction", "instances", "template", "split"})
    source = True
    order = 10

    @classmethod
    def input_digest(cls, cfg: TemplatesConfig) -> str:
        p = data_path(cfg)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        return stable_hash([[f.name, hashlib.sha256(f.read_bytes()).hexdigest()] for f in files])

    @cached_property
    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        rows = load_rows(data_path(self.cfg))
        return rows[: self.cfg.limit] if self.cfg.limit else rows

    @cached_property
    def held_out(self) -> set[int]:
        seed = self.ctx.cfg.seed
        return {k for k in range(len(self.rows)) if in_share(f"{seed}:templates:{k}", self.cfg.eval_fraction)}

    @cached_property
    def train_rows(self) -> list[int]:
        """The rows a few-shot prompt may show: those not held out."""
        return [k for k in range(len(self.rows)) if k not in self.held_out]

    @cached_property
    def options(self) -> list[str]:
        t = self.cfg.task
        if t.label_names:
            return list(t.label_names)
        return sorted({str(r.get(t.label)) for _, r in self.rows if r.get(t.label) not in (None, "")})

    def input(self, inputs) -> SourceRecords:
        return SourceRecords([Record(id=f"t{k:06d}", instruction="", extra={"row": k}) for k in range(len(self.rows))])

    def fields(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row's template fields and label name; raises ValueError(field, why)."""
        t = self.cfg.task
        out: dict[str, Any] = {}
        for name in FIELDS[t.type]:
            col = t.inputs.get(name, name)
            value = row.get(col)
            if value is None or (name != "context" and not str(value).strip()):
                raise ValueError(col, "missing or empty")
            out[name] = str(value).strip() if value is not None else ""
        label = row.get(t.label)
        if label is None or str(label).strip() == "":
            raise ValueError(t.label, "missing or empty")
        if t.type in LABELLED:
            if isinstance(label, int) and not isinstance(label, bool) and t.label_names:
                if not 0 <= label < len(t.label_names):
                    raise ValueError(t.label, f"label index {label} is not one of the {len(t.label_names)} label_names")
                label = t.label_names[label]
            elif t.label_names and str(label) not in t.label_names:
                raise ValueError(t.label, f"{label!r} is not one of label_names")
        out["label"] = str(label).strip()
        return out

    def library(self, kind: str) -> list[tuple[str, str, str]]:
        own = [(u.instruction, u.input, u.output) for u in self.cfg.templates if u.kind == kind]
        return (LIBRARY[self.cfg.task.type].get(kind, []) if self.cfg.builtin else []) + own

    def exemplars(self, rng: random.Random, k: int) -> list[dict[str, Any]]:
        pool = [j for j in self.train_rows if j != k]
        out = []
        for j in rng.sample(pool, min(self.cfg.shots, len(pool))):
            try:
                out.append(self.fields(self.rows[j][1]))
            except ValueError:
                continue  # a malformed row is rejected where it is read, and never shown
        return out

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out, t = StageResult(), self.cfg.task
        kinds = [k for k in self.cfg.kinds if self.library(k)]
        src = data_path(self.cfg)
        for r in batch:
            k = r.extra["row"]
            line, row = self.rows[k]
            try:
                values = self.fields(row)
            except ValueError as e:
                col, why = e.args
                out.reject(Reject(r.id, "malformed_row", detail=f"{src}:{line}: field '{col}': {why}",
                                  fields={"line": line}))
                continue
            rng = random.Random(derive_seed(self.ctx.cfg.seed, self.name, k))
            kind = rng.choice(kinds)
            templates = self.library(kind)
            which = rng.randrange(len(templates))
            values.update(task=t.name, options=self.options, source_language=t.source_language,
                          target_language=t.target_language,
                          exemplars=self.exemplars(rng, k) if kind == "few_shot" else [])
            try:
                instruction, inp, output = render(templates[which], values)
            except Exception as e:  # an undefined variable or an unsafe call in a user template
                out.reject(Reject(r.id, "template_error", detail=f"{kind} template {which}: {e}"))
                continue
            split = "eval" if k in self.held_out else "train"
            out.counts.add(f"kind:{kind}")
            out.counts.add(f"split:{split}")
            out.keep(Record(id=r.id, instruction=instruction, instances=[Instance(inp, output)],
                            is_classification=t.type in LABELLED and kind != "inverted",
                            extra={"template": {"kind": kind, "index": which, "row": k, "line": line,
                                                "label": values["label"]}, "split": split}))
        return out
