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


FIX = "run `selfinstruct verify RUNDIR` to check the whole run, or re-run with --force to regenerate this " \
      "stage and the ones after it"


def read_manifest(stage_dir: Path) -> dict[str, Any] | None:
    """The stage's manifest, None when there is none; a damaged one is a UserError naming the file."""
    mpath = Path(stage_dir) / MANIFEST
    if not mpath.exists():
        return None
    try:
        m = json.loads(mpath.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"invalid JSON ({e}); {FIX}", path=mpath) from None
    if not isinstance(m, dict) or not isinstance(m.get("parts"), list) or "config_hash" not in m:
        raise UserError(f"not a stage manifest; {FIX}", path=mpath)
    return m


def _check_file(path: Path, sha256: str | None, rows: int | None) -> str | None:
    if not path.is_file():
        return f"{path}: missing"
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        return f"{path}: its sha256 does not match the manifest (cut short, edited or replaced)"
    if rows is not None and sum(1 for line in data.splitlines() if line.strip()) != rows:
        return f"{path}: {rows} rows in the manifest, not in the file"
    return None


def verify_stage(stage_dir: Path, m: dict[str, Any]) -> list[str]:
    """What does not match the manifest: missing, cut or edited parts and files."""
    problems = []
    for p in m["parts"]:
        try:
            checks = [(p["file"], p["sha256"], p["rows"])]
            if p.get("rejects_file"):
                checks.append((p["rejects_file"], p.get("rejects_sha256"), p.get("rejects_rows")))
        except (KeyError, TypeError):
            return [f"{Path(stage_dir) / MANIFEST}: not a stage manifest (a part entry lacks file, rows or sha256)"]
        problems += filter(None, (_check_file(Path(stage_dir) / f, h, n) for f, h, n in checks))
    for name in m.get("files", []):
        problems += filter(None, [_check_file(Path(stage_dir) / name, m.get("file_sha256", {}).get(name), None)])
    return problems


def check_existing(stage_dir: Path, config_hash: str, *, verify: bool = True) -> dict[str, Any] | None:
    """The manifest of a stage folder that can be resumed with `config_hash` (None: nothing there yet);
    anything else is a UserError: another format, another configuration, damaged shards (`verify`:
    read every part and compare it with the manifest)."""
    m = read_manifest(stage_dir)
    if m is None:
        if stage_dir.exists() and any(stage_dir.glob("part-*.jsonl")):
            raise UserError(f"has part files but no {MANIFEST} (deleted?); {FIX}", path=stage_dir)
        return None
    if m.get("schema", 1) != SCHEMA:
        raise UserError(
            f"was written in run format {m.get('schema', 1)}, this is format {SCHEMA} "
            f"({SCHEMA_CHANGES.get(SCHEMA, 'changed')}); it cannot be resumed. Use a new output "
            "directory, or --force to regenerate this stage and the ones after it", path=stage_dir)
    if m.get("config_hash") != config_hash:
        raise UserError(
            f"{stage_dir} was written with a different configuration, model, prompt or input "
            f"(hash {str(m.get('config_hash'))[:12]} vs {config_hash[:12]}); refusing to mix them. "
            "Use a new output directory, or --force to discard this stage and the ones after it")
    problems = verify_stage(stage_dir, m) if verify else []
    if problems:
        raise UserError(f"{problems[0]}; {FIX}")
    return m


def parts_digest(manifest: dict[str, Any]) -> str:
    """Content hash of a stage's committed output: downstream stages key their config on it."""
    return hashlib.sha256(json.dumps([p["sha256"] for p in manifest["parts"]]).encode()).hexdigest()


class StageStore:
    def __init__(self, run_dir: Path, stage: str, config_hash: str, *, force: bool = False,
                 keep: tuple[str, ...] = ()):
        """`keep`: files of the stage folder that the user may edit (export's dataset card): neither
        removed on open nor by `force`, and not hashed in the manifest, so an edit is not "damage"."""
        self.dir = Path(run_dir) / stage
        self.stage = stage
        self.config_hash = config_hash
        self.keep = frozenset(keep)
        try:
            m = check_existing(self.dir, config_hash)
        except UserError:
            if not force:
                raise
            self._discard()
            m = None
        self.manifest: dict[str, Any] = m or {"stage": stage, "schema": SCHEMA, "config_hash": config_hash,
                                              "complete": False, "parts": [], "counts": {}, "state": {}}
        self._clean()
        if m is None:  # from now on, part files without a manifest mean it was deleted, not a crash
            self._write_manifest()

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
        return parts_digest(self.manifest)

    def _discard(self) -> None:
        """Remove what the stage wrote (--force), except the files the user may edit."""
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        for f in sorted(self.dir.rglob("*"), reverse=True) if self.dir.is_dir() else []:
            if f.is_dir() and not f.is_symlink():
                if not any(f.iterdir()):
                    f.rmdir()
            elif f.relative_to(self.dir).as_posix() not in self.keep:
                f.unlink()

    def _clean(self) -> None:
        if not self.dir.exists():
            return
        keep = {MANIFEST, *self.keep, *self.manifest.get("files", [])}
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
        """Complete a stage that writes files (export), not parts: they are listed in the manifest, each
        with its sha256 except the files the user may edit (`keep`: verified to exist, not to match)."""
        self.manifest["files"] = files
        self.manifest["file_sha256"] = {f: hashlib.sha256((self.dir / f).read_bytes()).hexdigest()
                                        for f in files if f not in self.keep}
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
    """Rows of a finished or partial stage directory, in commit order."""
    m = read_manifest(stage_dir)
    if m is None:
        raise UserError(f"no {MANIFEST} in {stage_dir}: not a stage directory")
    for p in m["parts"]:
        f = p.get("rejects_file") if rejects else p["file"]
        if f:
            yield from _read_rows(Path(stage_dir) / f)


def verify_run(run_dir: Path) -> dict[str, list[str]]:
    """Every stage folder of a run: the problems found (an empty list: it matches its manifest)."""
    out: dict[str, list[str]] = {}
    for d in sorted(p for p in Path(run_dir).iterdir() if p.is_dir()):
        try:
            m = read_manifest(d)
        except UserError as e:
            out[d.name] = [str(e)]
            continue
        if m is None:
            if any(d.glob("part-*.jsonl")):
                out[d.name] = [f"{d}: has part files but no {MANIFEST}"]
            continue
        out[d.name] = verify_stage(d, m)
    return out
