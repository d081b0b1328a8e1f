"""`selfinstruct show RUNDIR/STAGE`: page through the records (or rejects) of a stage's shard set.

Records are read part by part in commit order; whole parts before the requested offset are skipped
by their row counts in the manifest (no reading) when no reason filter is given."""
from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from ..io.errors import UserError
from ..io.jsonl import parse_line
from ..run.reader import StageDir, open_stage, read_lines
from .sections import clip

WIDTH = 100
TEXT_CHARS = 500  # instruction
FIELD_CHARS = 240  # input, output, raw, ...
MAX_INSTANCES = 3


def available_reasons(stage: StageDir, scan: bool = True) -> Counter[str]:
    """reason -> count: from the manifest counts (all levels), completed (scan) by the reasons found in
    the rejects files (a stage may write rejects it does not count)."""
    reasons: Counter[str] = Counter(stage.counts.reasons())
    if scan:
        seen: Counter[str] = Counter(str(r.get("reason", "?")) for r in stage.rows(rejects=True))
        for r, n in seen.items():
            if r not in reasons:
                reasons[r] = n
    return reasons


def select(stage_dir: Path, *, rejects: bool = False, reason: str | None = None, offset: int = 0,
           n: int = 10) -> tuple[list[tuple[int, str, dict[str, Any]]], int]:
    """([(index, raw line, record)] for the page, total matching records)."""
    stage = open_stage(stage_dir)
    if reason is not None:
        rejects = True
    if not stage.parts:
        files = stage.manifest.get("files") or []
        raise UserError("this stage writes no shards" + (f"; its files: {', '.join(files)}" if files else ""),
                        path=stage.path)
    if reason is not None:
        avail = available_reasons(stage, scan=False)
        if reason not in avail:
            avail = available_reasons(stage)
        if reason not in avail:
            listing = ", ".join(f"{r} ({c})" for r, c in sorted(avail.items(), key=lambda kv: (-kv[1], kv[0])))
            raise UserError(f"unknown reason {reason!r} for stage {stage.manifest.get('stage', stage.name)}; "
                            "available: " + (listing or "none (this stage has no rejects)"))
    page: list[tuple[int, str, dict[str, Any]]] = []
    idx = 0
    for path, rows in stage.part_files(rejects):
        if reason is None and rows >= 0 and (idx + rows <= offset or idx >= offset + n):
            idx += rows  # a whole part outside the page: counted from the manifest, not read
            continue
        for lineno, line in read_lines(path):
            if reason is None:
                if offset <= idx < offset + n:  # only the page's lines are parsed
                    page.append((idx, line, parse_line(line, path, lineno)))
                idx += 1
                continue
            rec = parse_line(line, path, lineno)
            if rec.get("reason") != reason:
                continue
            if offset <= idx < offset + n:
                page.append((idx, line, rec))
            idx += 1
    return page, idx


def _field(label: str, value: Any, n: int = FIELD_CHARS, indent: int = 4) -> list[str]:
    first = " " * indent + f"{label}: "
    return textwrap.wrap(clip(value, n) or "(empty)", width=WIDTH, initial_indent=first,
                         subsequent_indent=" " * (indent + 2), break_long_words=True, break_on_hyphens=False) \
        or [first.rstrip()]


def format_record(index: int, rec: dict[str, Any]) -> str:
    head = [f"#{index + 1}", str(rec.get("id", "?"))]
    if rec.get("reason"):
        head.append(f"reason={rec['reason']}")
    if "round" in rec:
        head.append(f"round={rec['round']}")
    if isinstance(rec.get("is_classification"), bool):
        head.append("classification" if rec["is_classification"] else "not-classification")
    if isinstance(rec.get("judge_score"), (int, float)):
        head.append(f"judge={rec['judge_score']:g}")
    if isinstance(rec.get("selection"), dict) and "rank" in rec["selection"]:
        head.append(f"rank={rec['selection']['rank']}")
    near = rec.get("nearest")
    if isinstance(near, dict) and near.get("id"):
        try:
            head.append(f"nearest={near['id']} ({float(near.get('score', 0)):.3f})")
        except (TypeError, ValueError):
            head.append(f"nearest={near['id']}")
    lines = ["  ".join(head)]
    if "instruction" in rec:
        lines += _field("instruction", rec["instruction"], TEXT_CHARS)
    insts = rec.get("instances")
    if isinstance(insts, list):
        for j, inst in enumerate(insts[:MAX_INSTANCES], 1):
            inst = inst if isinstance(inst, dict) else {"output": inst}
            lines += _field(f"[{j}] input", inst.get("input", "") or "(none)", FIELD_CHARS, 4)
            lines += _field(f"[{j}] output", inst.get("output", ""), FIELD_CHARS, 4)
        if len(insts) > MAX_INSTANCES:
            lines.append(f"    ... {len(insts) - MAX_INSTANCES} more instance(s)")
        if not insts:
            lines.append("    (no instances)")
    elif "input" in rec or "output" in rec:
        lines += _field("input", rec.get("input", "") or "(none)")
        lines += _field("output", rec.get("output", ""))
    for k in ("detail", "error", "classify_note", "kept_as"):
        if rec.get(k):
            lines += _field(k, rec[k])
    if rec.get("raw") and (rec.get("reason") or "instruction" not in rec):
        lines += _field("raw", rec["raw"])
    return "\n".join(lines)


def show(stage_dir: Path, *, rejects: bool = False, reason: str | None = None, offset: int = 0, n: int = 10,
         as_json: bool = False, echo: Callable[[str], None] = print,
         echo_err: Callable[[str], None] = print) -> int:
    """Print one page; returns the number of records printed."""
    page, total = select(stage_dir, rejects=rejects, reason=reason, offset=offset, n=n)
    what = f"rejects with reason {reason!r}" if reason else ("rejects" if rejects or reason else "records")
    if as_json:
        for _, line, _ in page:
            echo(line)
    else:
        for k, (idx, _, rec) in enumerate(page):
            if k:
                echo("")
            echo(format_record(idx, rec))
    note = echo_err if as_json else echo
    if not page:
        note(f"no {what} to show: {total} in {stage_dir}" + (f", offset {offset} is past the end" if total else ""))
    else:
        first, last = page[0][0] + 1, page[-1][0] + 1
        msg = f"-- {what} {first}-{last} of {total} in {stage_dir}"
        if last < total:
            msg += f"; next page: --offset {last}"
        if not as_json:
            echo("")
        note(msg)
    note(f"-- every stage, its rejects and exports in a browser: selfinstruct browse {Path(stage_dir).parent}")
    return len(page)
