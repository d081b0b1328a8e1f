"""`selfinstruct dedup`: near-duplicate removal of a JSONL file by ROUGE-L, greedy in file order."""
from __future__ import annotations

import sys
from pathlib import Path

from ..io.errors import UserError
from ..io.jsonl import atomic_write_jsonl, iter_jsonl
from .batch import dedup


def _texts(path: Path, field: str):
    rows, texts = [], []
    for line, obj in iter_jsonl(path):
        v = obj.get(field)
        if v is None:
            raise UserError("missing", path=path, line=line, field=field)
        if not isinstance(v, str):
            raise UserError(f"expected a string, got {type(v).__name__}", path=path, line=line, field=field)
        rows.append(obj)
        texts.append(v)
    return rows, texts


def run_dedup(input_path: Path, out_path: Path, *, field="instruction", threshold=0.7, against=None,
              rejects_path=None, quiet=False) -> tuple[int, int]:
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold must be between 0 and 1, got {threshold}")
    rows, texts = _texts(input_path, field)
    pool = _texts(against, field)[1] if against else []
    bar = None
    if not quiet:
        from tqdm import tqdm
        bar = tqdm(total=len(texts), desc="dedup", unit="row", file=sys.stderr)
    last = [0]

    def progress(n):
        if bar:
            bar.update(n - last[0])
            last[0] = n

    matches = dedup(texts, threshold=threshold, pool=pool, progress=progress)
    if bar:
        bar.update(len(texts) - last[0])
        bar.close()
    kept = [r for r, m in zip(rows, matches) if not m.duplicate]
    dropped = []
    for i, (r, m) in enumerate(zip(rows, matches)):
        if m.duplicate:
            near = m.nearest
            if near is not None and near.startswith("pool:"):
                where = {"against_line_index": int(near[5:])}
            else:
                where = {"nearest_index": int(near) if near is not None else None}
            dropped.append({"index": i, **r, "rouge_l": m.score, **where})
    atomic_write_jsonl(out_path, kept)
    if rejects_path:
        atomic_write_jsonl(rejects_path, dropped)
    return len(kept), len(dropped)
