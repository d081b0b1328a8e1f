"""The Datasette app over a run's database, kept up to date while the run is written, and its server.

Datasette opens the database read-only (`mode=ro`): nothing a browser sends writes to it, and the run
itself is only read (`database.build`). The database is not served as immutable, because a thread here
brings it up to the run's manifests every few seconds (stages that committed parts since); Datasette's
metadata (facets, canned queries) follows through its `get_metadata` hook (plugin.py). The server binds
127.0.0.1 unless told otherwise."""
from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Callable

from ..io.errors import UserError
from .database import Built, build, db_name
from .metadata import metadata
from .plugin import LIVE, register

# Datasette settings: pages of 50, facets up to 30 values, long texts cut in the HTML (the JSON API and
# the row page have them whole), no file download, no suggestions computed on every page.
SETTINGS = {"default_page_size": 50, "max_returned_rows": 1000, "sql_time_limit_ms": 5000, "default_facet_size": 30,
            "facet_time_limit_ms": 1000, "truncate_cells_html": 1200, "allow_download": False, "suggest_facets": False}
REFRESH_S = 5.0
LOCAL = ("127.0.0.1", "localhost", "::1")


def app(built: Built):
    """A Datasette instance over the database of `built` (call `refresh` after another build)."""
    from datasette.app import Database, Datasette

    register()
    ds = Datasette(settings=SETTINGS)  # with no file, it serves an in-memory database: replaced by ours
    ds.remove_database("_memory")
    ds.add_database(Database(ds, path=str(built.path), is_mutable=True), name=db_name(built.run.path))
    refresh(ds, built)
    return ds


def refresh(ds, built: Built) -> None:
    """The metadata of `ds` from the database as `built` left it (tables, columns, queries)."""
    LIVE[ds] = metadata(built.path, db_name(built.run.path), built.run.path)


class Refresher(threading.Thread):
    """Brings the database up to the run's manifests every `every` seconds while the server runs."""

    def __init__(self, ds, built: Built, every: float, log: Callable[[str], None]):
        super().__init__(name="selfinstruct-browse-refresh", daemon=True)
        self.ds, self.run_dir, self.path, self.every, self.log = ds, built.run.path, built.path, every, log
        self.stopped = threading.Event()
        self.said = ""

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                built = build(self.run_dir, self.path)
            except (UserError, sqlite3.Error) as e:  # a stage regenerated with --force: said once, tried again
                if str(e) != self.said:
                    self.log(f"browse: not refreshed: {e}")
                self.said = str(e)
                continue
            self.said = ""
            if built.changed:
                refresh(self.ds, built)
                self.log(f"browse: refreshed {', '.join(built.rebuilt + built.appended + built.removed) or 'seeds'}")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); UserError (one line) when it is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UserError(f"cannot listen on {host}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror} (another --port?)") from None
    sock.listen(128)
    return sock


def url_of(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(run_dir: Path, *, host: str = "127.0.0.1", port: int = 8001, refresh_s: float = REFRESH_S,
          log: Callable[[str], None] = print) -> None:
    """Build (or bring up to date) the database of `run_dir` and serve it until Ctrl-C."""
    import uvicorn

    built = build(run_dir)
    sock = bind(host, port)
    ds = app(built)
    asyncio.run(ds.invoke_startup())
    what = f"{len(built.rebuilt)} stage(s) loaded, {len(built.appended)} appended, {len(built.unchanged)} unchanged"
    log(f"browse: {built.run.path} ({what}); database {built.path}")
    if host not in LOCAL:
        log(f"browse: listening on {host}: anyone who can reach this machine can read the run")
    log(f"browse: open {url_of(host, sock)}{db_name(built.run.path)}  (Ctrl-C to stop)")
    refresher = Refresher(ds, built, refresh_s, log)
    if refresh_s > 0:
        refresher.start()
    server = uvicorn.Server(uvicorn.Config(ds.app(), log_level="warning", lifespan="on"))
    try:
        server.run(sockets=[sock])
    finally:
        refresher.stopped.set()
        sock.close()
