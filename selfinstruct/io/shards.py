"""Stage output as JSONL shards plus a manifest (rows, sha256). Each commit writes its part files
atomically and then the manifest atomically; anything on disk that the manifest does not name is
left-over from an interrupted commit and is removed on open. Re-running resumes from the manifest.

Every manifest carries the format version (`SCHEMA`). Runs written by an older format are refused with
one line naming the change rather than resumed with hashes that mean something else."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError
from .jsonl import atomic_write_json, atomic_write_jsonl
from .records import Counts, Record, Reject

MANIFEST = "manifest.json"
# 2: stages with declared contracts, per-stage models and model fingerprints in the stage hash (issue 11)
SCHEMA = 2
SCHEMA_CHANGES = {2: "stage hashes now include each stage's model fingerprint"}


def _wire(x: Any) -> Any:
    return x.to_json() if isinstance(x, (Record, Reject)) else x


class StageStore:
    def __init__(self, run_dir: Path, stage: str, config_hash: str, *, force: bool = False):
        self.dir = Path(run_dir) / stage
        self.stage = stage
        self.config_hash = config_hash
        mpath = self.dir / MANIFEST
        if mpath.exists():
            m = json.loads(mpath.read_text("utf-8"))
            if m.get("schema", 1) != SCHEMA and not force:
                old = m.get("schema", 1)
                raise UserError(
                    f"{self.dir} was written in run format {old}, this is format {SCHEMA} "
                    f"({SCHEMA_CHANGES.get(SCHEMA, 'changed')}); it cannot be resumed. Use a new output "
                    "directory, or --force to regenerate this stage and the ones after it")
            if m.get("config_hash") != config_hash:
                if not force:
                    raise UserError(
                        f"{self.dir} was written with a different configuration, model, prompt or input "
                        f"(hash {m.get('config_hash', '?')[:12]} vs {config_hash[:12]}); refusing to mix them. "
                        "Use a new output directory, or --force to discard this stage and the ones after it")
                shutil.rmtree(self.dir)
                m = None
        else:
            m = None
        self.manifest: dict[str, Any] = m or {"stage": stage, "schema": SCHEMA, "config_hash": config_hash,
                                              "complete": False, "parts": [], "counts": {}, "state": {}}
        self._clean()

    # ------------------------------------------------------------------ state
    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @property
    def parts(self) -> list[dict[str, Any]]:
        return self.manifest["parts"]

    @property
    def state(self) -> dict[str, Any]:
        return self.manifest.setdefault("state", {})

    @property
    def counts(self) -> dict[str, Any]:
        return self.manifest.setdefault("counts", {})

    def digest(self) -> str:
        """Content hash of the committed output: downstream stages key their config on it."""
        return hashlib.sha256(json.dumps([p["sha256"] for p in self.parts]).encode()).hexdigest()

    def _clean(self) -> None:
        if not self.dir.exists():
            return
        keep = {MANIFEST, *self.manifest.get("files", [])}
        for p in self.parts:
            keep.add(p["file"])
            if p.get("rejects_file"):
                keep.add(p["rejects_file"])
        for f in sorted(self.dir.rglob("*"), reverse=True):
            rel = f.relative_to(self.dir).as_posix()
            if f.is_file() and rel not in keep:
                f.unlink()
            elif f.is_dir() and not any(f.iterdir()):
                f.rmdir()

    # ------------------------------------------------------------------ reading
    def rows(self) -> Iterator[dict[str, Any]]:
        for p in self.parts:
            yield from _read_rows(self.dir / p["file"])

    def rejects(self) -> Iterator[dict[str, Any]]:
        for p in self.parts:
            if p.get("rejects_file"):
                yield from _read_rows(self.dir / p["rejects_file"])

    def records(self) -> Iterator[Record]:
        for row in self.rows():
            yield Record.from_json(row)

    def totals(self) -> Counts:
        """What the committed parts counted."""
        return Counts(self.counts)

    def num_rows(self) -> int:
        return sum(p["rows"] for p in self.parts)

    # ------------------------------------------------------------------ writing
    def commit(self, rows: list[Record | dict[str, Any]], rejects: list[Reject | dict[str, Any]] = (), *,
               state: dict[str, Any] | None = None, counts: Counts | dict[str, int] | None = None) -> None:
        """Write one part (and its rejects) then the manifest; a crash at any point leaves the old
        manifest valid and the partial files are removed on the next open."""
        n = len(self.parts)
        name = f"part-{n:05d}.jsonl"
        data = atomic_write_jsonl(self.dir / name, map(_wire, rows))
        entry = {"file": name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}
        rname = f"rejects/part-{n:05d}.jsonl"
        rdata = atomic_write_jsonl(self.dir / rname, map(_wire, rejects))
        entry.update(rejects_file=rname, rejects_rows=len(rejects), rejects_sha256=hashlib.sha256(rdata).hexdigest())
        self.parts.append(entry)
        if state is not None:
            self.manifest["state"] = state
        flat = counts.to_flat() if isinstance(counts, Counts) else (counts or {})
        for k, v in flat.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self._write_manifest()

    def finish(self, extra: dict[str, Any] | None = None) -> None:
        self.manifest["complete"] = True
        if extra:
            self.manifest.update(extra)
        self._write_manifest()

    def finish_files(self, files: list[str], counts: Counts) -> None:
        """Complete a stage that writes files (export), not parts: they are listed in the manifest."""
        self.manifest["files"] = files
        self.counts.update(counts.to_flat())
        self.finish()

    def _write_manifest(self) -> None:
        atomic_write_json(self.dir / MANIFEST, self.manifest)


def _read_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_stage_rows(stage_dir: Path, rejects: bool = False) -> Iterator[dict[str, Any]]:
    """Rows of a finished or partial stage directory, in commit order (for `show`, `stats`)."""
    mpath = Path(stage_dir) / MANIFEST
    if not mpath.exists():
        raise UserError(f"no {MANIFEST} in {stage_dir}: not a stage directory")
    m = json.loads(mpath.read_text("utf-8"))
    for p in m["parts"]:
        f = p.get("rejects_file") if rejects else p["file"]
        if f:
            yield from _read_rows(Path(stage_dir) / f)
