"""The one reader of a run directory (`stats`, `show`, `decontaminate`, the dataset card, the workflows):
run.json, the stage manifests (in the order the stages ran), and a stage's rows and rejects in commit order.

A stage is any sub-folder with a manifest.json, so a run is never shown with a stage missing. What the run
directory says about itself decides the order, not the stages this installation registers (this layer
sits below the pipeline): the stages run.json's config lists, in its order, then any others by their
shape as their manifests tell it (a generator first, a stage that writes files last), then by name."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

from ..io.errors import UserError
from ..io.jsonl import iter_lines, parse_line
from ..io.records import Counts
from ..io.shards import FIX, MANIFEST, read_manifest, verify_run

RUN_FILE = "run.json"
# The repository root: a seed path relative to it (the default seed_tasks/...) still resolves when
# `stats` runs from another folder.
REPO_ROOT = Path(__file__).resolve().parents[2]


def load_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from None
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", path=path) from None


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json (written by `generate`), or {} for a run directory without one."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        return {}
    info = load_json(path)
    return info if isinstance(info, dict) else {}


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) for each non-blank line of a shard, the line exactly as stored (`show --json`
    prints it unchanged)."""
    return iter_lines(path, missing="shard named in the manifest is missing")


@dataclass
class StageDir:
    """One stage folder of a run and its manifest."""
    name: str
    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def parts(self) -> list[dict[str, Any]]:
        return self.manifest["parts"]

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @cached_property
    def counts(self) -> Counts:
        return Counts(self.manifest.get("counts") or {})

    @property
    def generator(self) -> bool:
        """Whether it grew its records from the seed tasks, not from the stage before it (`is_generator`)."""
        return is_generator(self.manifest)

    def part_files(self, rejects: bool = False) -> list[tuple[Path, int]]:
        """(shard path, its row count from the manifest, -1 if not recorded) in commit order."""
        out = []
        for p in self.parts:
            name = p.get("rejects_file") if rejects else p.get("file")
            if name:
                out.append((self.path / name, int(p.get("rejects_rows" if rejects else "rows", -1))))
        return out

    def num_rows(self, rejects: bool = False) -> int:
        """Rows committed, from the manifest (no shard is read)."""
        key = "rejects_rows" if rejects else "rows"
        return sum(p.get(key, 0) for p in self.parts)

    def rows(self, rejects: bool = False) -> Iterator[dict[str, Any]]:
        """Rows (or rejects) in commit order; bad JSON is a UserError naming file and line."""
        for path, _ in self.part_files(rejects):
            for lineno, line in read_lines(path):
                yield parse_line(line, path, lineno)


def read_stage(path: Path) -> StageDir:
    manifest = read_manifest(Path(path))  # the pipeline's own reader: the same checks and errors
    if manifest is None:
        raise UserError(f"no {MANIFEST}: not a stage directory", path=path)
    return StageDir(Path(path).name, Path(path), manifest)


def is_generator(manifest: dict[str, Any]) -> bool:
    """Whether a stage's manifest is a generator's: finished, it records whether it `reached` its target;
    not finished, it has parts committed without the input position that every stage reading an input
    records (`state.inputs_done`). A stage that writes files (`files`) is none."""
    if "files" in manifest:
        return False
    if "reached" in manifest or manifest.get("complete"):
        return "reached" in manifest
    return bool(manifest.get("parts")) and "inputs_done" not in (manifest.get("state") or {})


def _shape(stage_dir: Path) -> int:
    """Where a stage that run.json does not list goes: generators first, stages that write files last."""
    try:
        m = json.loads((stage_dir / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return 1  # its errors are reported when the stage is opened
    if not isinstance(m, dict):
        return 1
    return 0 if is_generator(m) else 2 if "files" in m else 1


def stage_names(run_dir: Path, configured: list[str] | None = None) -> list[str]:
    """Names of the stage folders of a run: those the run's config lists, in its order (the order the
    stages ran in), then the others by shape (from their manifests) and name."""
    present = {p.name for p in Path(run_dir).iterdir() if (p / MANIFEST).is_file()}
    first = [s for s in configured or [] if s in present]
    rest = sorted(present - set(first), key=lambda s: (_shape(Path(run_dir) / s), s))
    return first + rest


def configured_stages(info: dict[str, Any]) -> list[str]:
    return list((info.get("config") or {}).get("stages") or [])


@dataclass
class Run:
    path: Path
    info: dict[str, Any]  # run.json, {} without one
    stages: list[StageDir]  # in pipeline order

    @property
    def config(self) -> dict[str, Any]:
        return self.info.get("config") or {}


def open_run(run_dir: Path) -> Run:
    """A run directory with its stages; UserError (one line) for anything else."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError("no such run directory", path=run_dir)
    if not run_dir.is_dir():
        raise UserError("not a directory (expected a run directory)", path=run_dir)
    if (run_dir / MANIFEST).exists():
        raise UserError(f"is a stage directory; give the run directory instead ({run_dir.parent})", path=run_dir)
    info = read_run_info(run_dir)
    names = stage_names(run_dir, configured_stages(info))
    if not names:
        raise UserError(f"not a run directory: no stage folder with a {MANIFEST}", path=run_dir)
    return Run(run_dir, info, [read_stage(run_dir / s) for s in names])


def check_parts(run: Run) -> None:
    """`verify`'s check of the run (every part and file against its manifest): a report would count rows
    that are missing or not the ones committed. UserError naming the first problem."""
    problems = [p for found in verify_run(run.path).values() for p in found]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}; {FIX}")


def open_stage(path: Path) -> StageDir:
    """A stage directory (RUNDIR/STAGE); UserError (one line) for anything else."""
    path = Path(path)
    if not path.exists():
        raise UserError("no such directory", path=path)
    if not path.is_dir():
        raise UserError("not a directory (expected RUNDIR/STAGE, e.g. runs/default/bootstrap)", path=path)
    if not (path / MANIFEST).is_file():
        names = stage_names(path, configured_stages(read_run_info(path)))
        if names:
            raise UserError(f"is a run directory, not a stage; pick one of: {', '.join(names)}", path=path)
        raise UserError(f"not a stage directory (no {MANIFEST})", path=path)
    return read_stage(path)


def seed_path(run: Run, override: Path | None = None) -> Path | None:
    """The seed file the run used: `override` (--seeds), else the path run.json records, tried as given
    (absolute, or relative to the current folder), then relative to the config file's folder and its
    parent (where `generate` looks), the run directory and the repository root; None if none exists."""
    if override is not None:
        if not Path(override).is_file():
            raise UserError("seed file not found", path=override)
        return Path(override)
    recorded = run.info.get("seed_tasks") or run.config.get("seed_tasks")
    if not recorded:
        return None
    p = Path(recorded).expanduser()
    candidates = [p]
    if not p.is_absolute():
        config_file = run.info.get("config_file")
        if config_file:
            candidates += [Path(config_file).parent / p, Path(config_file).parent.parent / p]
        candidates += [run.path / p, REPO_ROOT / p]
    return next((c for c in candidates if c.is_file()), None)
