"""Parquet copies of the export files (`export.formats: [..., parquet]`): the same rows as the JSONL/JSON
file of each format and split, with an explicit Arrow schema per format, so an empty split is still a
well-formed file with its columns, and a column's type never depends on what the rows happen to hold.
pyarrow comes with `datasets`; it is imported when a Parquet file is written or counted, not before."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from .errors import UserError
from .jsonl import atomic_write_bytes

PARQUET = "parquet"  # the name in export.formats, and the files' extension


def schemas() -> dict[str, Any]:
    """The Arrow schema of each format that `io.formats.to_formats` writes."""
    import pyarrow as pa

    turn = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return {
        "messages": pa.schema([("id", pa.string()), ("messages", turn)]),
        "prompt_completion": pa.schema([("id", pa.string()), ("prompt", turn), ("completion", turn)]),
        "alpaca": pa.schema([("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())]),
    }


def atomic_write_parquet(path: str | os.PathLike, rows: Iterable[dict[str, Any]], fmt: str | None = None) -> bytes:
    """Write the rows as one Parquet file (atomically); `fmt`: a format of `schemas()`, else the schema is
    inferred from the rows (another stage's format, e.g. preference pairs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = schemas().get(fmt) if fmt else None
    table = pa.Table.from_pylist(list(rows), schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    atomic_write_bytes(path, data)
    return data


def parquet_rows(path: str | os.PathLike) -> int:
    """Rows of a Parquet file, from its footer (no data is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(Path(path)).metadata.num_rows
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"not a readable Parquet file ({e})", path=path) from None
