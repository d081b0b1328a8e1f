"""The SQLite copy of a run that `browse` serves, built with sqlite-utils from what the manifests name.

Tables: one per stage (its committed records, in commit order: `seq`), `rejects` (every stage's, with
`stage`, `reason` and `level`), one per export file (`export_train_messages`, ...), `seeds` (the run's
seed tasks: what a near-duplicate was matched against), `stages` (one row per stage: status, counts,
reasons) and `_meta` (what was loaded: each stage's manifest sha256 and the parts read).

Only parts a manifest names are read, each checked against its sha256, so a run being written (or killed
with `kill -9` mid-stage) shows what it committed. A build reads every manifest and touches only the
stages whose manifest changed: a stage that committed more parts since (same config hash, same parts
before) gets the new parts appended; any other change rebuilds that stage's tables; a stage folder that
is gone loses its tables. A stage's `_meta` row is removed before its tables change and written after,
so a build killed half way is redone from scratch for that stage on the next one."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from ..io.errors import UserError
from ..io.jsonl import parse_line
from ..io.records import Counts
from ..io.seeds import load_seed_tasks
from ..io.shards import FIX, MANIFEST
from ..models import cache_dir
from ..run.reader import Run, StageDir, is_generator, open_run, seed_path
from .rows import CORE, DERIVED, TYPES, export_row, record_row, reject_row

# the rejects table's columns: where and why first, then what was dropped
REJECTS = ("stage", "seq", "reason", "level", "id", "instruction", "input", "output", "detail", "raw", "error",
           *DERIVED, "part", "record")
LAYOUT = 1  # PRAGMA user_version: bump when a table changes; a database of another layout is rebuilt
RESERVED = ("rejects", "stages", "seeds", "_meta")
SEEDS_KEY = "@seeds"
FTS_COLUMNS = ["instruction", "input", "output"]
EXPORT_SUFFIXES = (".jsonl", ".json")


def db_name(run_dir: Path) -> str:
    """The database's name in Datasette's URLs: the run folder's name, in safe characters."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(run_dir).resolve().name).strip("_-")
    return name or "run"


def db_path(run_dir: Path) -> Path:
    """Where the database of a run lives: in the cache, keyed by the run's absolute path, never in the run."""
    run = Path(run_dir).resolve()
    key = hashlib.sha256(str(run).encode("utf-8")).hexdigest()[:16]
    return cache_dir() / "browse" / key / f"{db_name(run)}.db"


def stage_table(stage: str) -> str:
    return f"stage_{stage}" if stage in RESERVED or stage.startswith("export_") else stage


def file_table(stage: str, name: str) -> str:
    """An export file's table: `export_train_messages` for export/train.messages.jsonl."""
    stem = name.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_]+", "_", f"{stage}_{stem}")


@dataclass
class Built:
    """What a build did: the stages whose tables were rebuilt, appended to, removed or left as they were."""
    path: Path
    run: Run
    manifests: dict[str, dict[str, Any]]
    shas: dict[str, str] = field(default_factory=dict)  # each manifest's sha256, as read by this build
    rebuilt: list[str] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    seeds: bool = False  # the seeds table was (re)loaded or dropped

    @property
    def changed(self) -> bool:
        return bool(self.rebuilt or self.appended or self.removed or self.seeds)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(stage: StageDir) -> tuple[str, dict[str, Any]]:
    """(sha256 of the manifest's bytes, the manifest) as read now: one snapshot per stage and build."""
    path = stage.path / MANIFEST
    try:
        data = path.read_bytes()
        m = json.loads(data.decode("utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the manifest ({e}); {FIX}", path=path) from None
    if not isinstance(m, dict) or not isinstance(m.get("parts"), list):
        raise UserError(f"not a stage manifest; {FIX}", path=path)
    return _sha(data), m


def _lines(path: Path, sha256: str | None) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, line, parsed) of a committed file, checked against the manifest's sha256 first."""
    try:
        data = path.read_bytes()
    except OSError:
        raise UserError(f"named in the manifest but missing; {FIX}", path=path) from None
    if sha256 and _sha(data) != sha256:
        raise UserError(f"its sha256 does not match the manifest (cut short, edited or replaced); {FIX}", path=path)
    for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():
            yield lineno, line, parse_line(line, path, lineno)


def _levels(manifest: dict[str, Any]) -> dict[str, str]:
    """reason -> level (record, instance, note) from the manifest's counts; a rejects line has no level."""
    out: dict[str, str] = {}
    for level, reason in Counts(manifest.get("counts") or {}).drops:
        if out.get(reason) != "record":
            out[reason] = level
    return out


def _parts_digest(parts: list[dict[str, Any]]) -> str:
    return _sha(json.dumps([[p.get("file"), p.get("sha256"), p.get("rejects_sha256")] for p in parts]).encode())


def _columns(names: tuple[str, ...]) -> dict[str, type]:
    return {c: TYPES.get(c, str) for c in names}


def _open(path: Path) -> sqlite_utils.Database:
    """The database at `path`; one of another layout (or not ours) is deleted and started anew."""
    db = sqlite_utils.Database(path)
    if db.execute("PRAGMA user_version").fetchone()[0] not in (0, LAYOUT) or (
            db.table_names() and "_meta" not in db.table_names()):
        db.close()
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
        db = sqlite_utils.Database(path)
    return db


def _prepare(db: sqlite_utils.Database) -> None:
    """WAL (readers see the last finished commit while a build writes), the layout, the shared tables."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA user_version={LAYOUT}")
    if not db["_meta"].exists():
        db["_meta"].create({"name": str, "kind": str, "sha256": str, "config_hash": str, "parts": int,
                            "parts_digest": str, "rows": int, "rejects": int, "tables": str}, pk="name")
    if not db["rejects"].exists():
        db["rejects"].create(_columns(REJECTS), pk=("stage", "seq"))
        db["rejects"].enable_fts(FTS_COLUMNS, create_triggers=True)
        for cols in (["stage", "reason"], ["id"], ["reason"]):
            db["rejects"].create_index(cols)


def _drop(db: sqlite_utils.Database, tables: list[str]) -> None:
    for t in tables:
        if db[t].exists():
            if db[f"{t}_fts"].exists():
                db[t].disable_fts()
            db[t].drop()


def _load_parts(db: sqlite_utils.Database, sd: StageDir, start: int, table: str) -> tuple[int, int]:
    """Insert the records and rejects of parts[start:]; (records, rejects) in the table afterwards."""
    parts = sd.parts
    seq = sum(int(p.get("rows", 0)) for p in parts[:start])
    rseq = sum(int(p.get("rejects_rows", 0)) for p in parts[:start])
    levels = _levels(sd.manifest)
    for k in range(start, len(parts)):
        p = parts[k]
        rows = []
        for _, line, row in _lines(sd.path / p["file"], p.get("sha256")):
            rows.append(record_row(seq, k, row, line))
            seq += 1
        db[table].insert_all(rows, pk="seq", alter=True, batch_size=500)
        if p.get("rejects_file"):
            rejects = []
            for _, line, row in _lines(sd.path / p["rejects_file"], p.get("rejects_sha256")):
                rejects.append(reject_row(sd.name, rseq, k, row, line, levels))
                rseq += 1
            db["rejects"].insert_all(rejects, pk=("stage", "seq"), batch_size=500)
    return seq, rseq


def _finish_table(db: sqlite_utils.Database, table: str) -> None:
    """Drop the derived columns no row has (a bootstrap table has no judge score), then index and search."""
    t = db[table]
    empty = [c for c in DERIVED
             if c in t.columns_dict and not db.execute(f"SELECT 1 FROM [{table}] WHERE [{c}] IS NOT NULL LIMIT 1")
             .fetchone()]
    if empty:
        t.transform(drop=empty)
    t.enable_fts(FTS_COLUMNS, create_triggers=True)
    t.create_index(["id"])


def _load_files(db: sqlite_utils.Database, sd: StageDir) -> list[str]:
    """The export files a finished sink stage lists (JSONL and JSON), one table each."""
    tables = []
    hashes = sd.manifest.get("file_sha256") or {}
    for name in sd.manifest.get("files") or []:
        if not name.endswith(EXPORT_SUFFIXES) or name not in hashes:
            continue  # the dataset card (a user file), Parquet copies of the same rows
        table = file_table(sd.name, name)
        _drop(db, [table])  # left by a build that was killed
        path = sd.path / name
        if name.endswith(".jsonl"):
            rows = [export_row(i, row) for i, (_, _, row) in enumerate(_lines(path, hashes[name]))]
        else:
            data = path.read_bytes()
            if _sha(data) != hashes[name]:
                raise UserError(f"its sha256 does not match the manifest; {FIX}", path=path)
            items = json.loads(data.decode("utf-8"))
            rows = [export_row(i, row) for i, row in enumerate(items if isinstance(items, list) else [items])]
        db[table].create(_columns(("seq", "id")), pk="seq")
        db[table].insert_all(rows, pk="seq", alter=True, batch_size=500)
        if "id" in db[table].columns_dict:
            db[table].create_index(["id"])
        tables.append(table)
    return tables


def _load_stage(db: sqlite_utils.Database, sd: StageDir, sha: str, prev: dict[str, Any] | None) -> str:
    """Bring one stage's tables up to its manifest: 'appended' or 'rebuilt'."""
    m, parts, table = sd.manifest, sd.parts, stage_table(sd.name)
    start = 0
    if (prev and prev["kind"] == "stage" and prev["config_hash"] == m.get("config_hash")
            and prev["parts"] <= len(parts) and _parts_digest(parts[:prev["parts"]]) == prev["parts_digest"]
            and db[table].exists() and not m.get("files") and prev["tables"] == json.dumps([table])):
        start = prev["parts"]
    db["_meta"].delete_where("name = ?", [sd.name])  # a build killed from here on redoes this stage
    if not start:
        _drop(db, json.loads(prev["tables"]) if prev else [table])
        db.execute("DELETE FROM rejects WHERE stage = ?", [sd.name])
        db.conn.commit()
    tables = []
    rows = rejects = 0
    if parts or not m.get("files"):
        if not start:
            db[table].create(_columns(CORE + DERIVED + ("record",)), pk="seq")
        rows, rejects = _load_parts(db, sd, start, table)
        if not start:
            _finish_table(db, table)
        tables.append(table)
    tables += _load_files(db, sd)
    db["_meta"].insert({"name": sd.name, "kind": "stage", "sha256": sha, "config_hash": m.get("config_hash"),
                        "parts": len(parts), "parts_digest": _parts_digest(parts), "rows": rows,
                        "rejects": rejects, "tables": json.dumps(tables)}, pk="name", replace=True)
    return "appended" if start else "rebuilt"


def _load_seeds(db: sqlite_utils.Database, run: Run, state: dict[str, dict[str, Any]]) -> bool:
    """The run's seed tasks (the pool a generated instruction's nearest may come from); True if changed."""
    try:
        path = seed_path(run)
    except UserError:
        path = None
    key = ""
    if path is not None:
        st = path.stat()
        key = _sha(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    prev = state.get(SEEDS_KEY)
    if (prev["sha256"] if prev else "") == key and (not key or db["seeds"].exists()):
        return False
    db["_meta"].delete_where("name = ?", [SEEDS_KEY])
    _drop(db, ["seeds"])
    if path is not None:
        try:
            tasks = load_seed_tasks(path)
        except UserError:
            tasks = []
        db["seeds"].create({"id": str, "instruction": str, "input": str, "output": str, "classification": str,
                            "n_instances": int}, pk="id")
        db["seeds"].insert_all(({"id": t.id, "instruction": t.instruction,
                                 "input": t.instances[0].input if t.instances else None,
                                 "output": t.instances[0].output if t.instances else None,
                                 "classification": "yes" if t.is_classification else "no",
                                 "n_instances": len(t.instances)} for t in tasks), pk="id", replace=True)
        db["_meta"].insert({"name": SEEDS_KEY, "kind": "seeds", "sha256": key, "tables": '["seeds"]'},
                           pk="name", replace=True)
    return True


def _write_stages(db: sqlite_utils.Database, built: Built) -> None:
    """The `stages` table: one row per stage, in the run's order."""
    rows = []
    for step, stage in enumerate(built.run.stages, 1):
        m = built.manifests[stage.name]
        counts = Counts(m.get("counts") or {})
        writes = ((m.get("provenance") or {}).get("writes")) or []
        files = [f for f in m.get("files") or [] if f.endswith(EXPORT_SUFFIXES) and f in (m.get("file_sha256") or {})]
        rows.append({"step": step, "name": stage.name, "status": "complete" if m.get("complete") else "in progress",
                     "records": sum(int(p.get("rows", 0)) for p in m["parts"]),
                     "rejects": sum(int(p.get("rejects_rows", 0)) for p in m["parts"]),
                     "dropped": counts.dropped("record"), "reasons": json.dumps(counts.reasons()),
                     "generator": is_generator(m), "writes": json.dumps(writes),
                     "table": stage_table(stage.name) if m["parts"] or not m.get("files") else None,
                     "files": json.dumps({f: file_table(stage.name, f) for f in files}),
                     "manifest_sha256": built.shas[stage.name]})
    _drop(db, ["stages"])
    db["stages"].create({"step": int, "name": str, "status": str, "records": int, "rejects": int, "dropped": int,
                         "reasons": str, "generator": int, "writes": str, "table": str, "files": str,
                         "manifest_sha256": str}, pk="step")
    db["stages"].insert_all(rows, pk="step")


def build(run_dir: Path, path: Path | None = None) -> Built:
    """Bring the database of `run_dir` (at `path`, default `db_path(run_dir)`) up to the run's manifests."""
    run = open_run(run_dir)  # not a run: one line, exit 2
    path = Path(path) if path is not None else db_path(run.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = _open(path)
    try:
        _prepare(db)
        state = {r["name"]: r for r in db["_meta"].rows}
        built = Built(path, run, {})
        for stage in run.stages:
            sha, manifest = _read_manifest(stage)
            built.manifests[stage.name], built.shas[stage.name] = manifest, sha
            prev = state.get(stage.name)
            if prev and prev["sha256"] == sha:
                built.unchanged.append(stage.name)
                continue
            how = _load_stage(db, StageDir(stage.name, stage.path, manifest), sha, prev)
            (built.appended if how == "appended" else built.rebuilt).append(stage.name)
        for name, prev in state.items():
            if prev["kind"] == "stage" and name not in built.manifests:
                db["_meta"].delete_where("name = ?", [name])
                _drop(db, json.loads(prev["tables"] or "[]"))
                db.execute("DELETE FROM rejects WHERE stage = ?", [name])
                built.removed.append(name)
        built.seeds = _load_seeds(db, run, state)
        if built.changed or not db["stages"].exists():
            _write_stages(db, built)
        db.conn.commit()
        return built
    finally:
        db.close()
