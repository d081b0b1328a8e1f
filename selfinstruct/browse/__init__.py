"""`selfinstruct browse RUNDIR`: a run in the browser, with Datasette (the `browse` extra).

rows.py       what a record, a reject or an export example shows as columns (no dependency)
database.py   the SQLite copy of the committed shards (sqlite-utils), rebuilt per changed manifest
metadata.py   Datasette's metadata for it: facets, search, canned queries
serve.py      the Datasette app, the refresh while a run is written, the server on 127.0.0.1
plugin.py     the Datasette plugin (get_metadata) through which the metadata follows a refresh

The command reads the run with `run/` and never writes into it: the database lives in the cache
(`~/.cache/selfinstruct/browse/`, or $SELFINSTRUCT_CACHE/browse/)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..io.errors import UserError
from ..run.reader import open_run

EXTRA = "pip install 'selfinstruct[browse]'"


def require() -> None:
    """UserError (one line) when the `browse` extra is not installed."""
    try:
        import datasette  # noqa: F401
        import sqlite_utils  # noqa: F401
    except ImportError as e:
        raise UserError(f"`selfinstruct browse` needs Datasette and sqlite-utils ({e.name} is missing): "
                        f"{EXTRA}") from None


def browse(run_dir: Path, *, host: str, port: int, log: Callable[[str], None]) -> None:
    """`selfinstruct browse`: a folder that is not a run is refused first (one line), then the extra is
    checked, then the run is served until Ctrl-C."""
    open_run(run_dir)
    require()
    from .serve import serve

    serve(run_dir, host=host, port=port, log=log)
