"""User-facing errors: one line, naming file, line and field. Exit codes: 2 bad input (or a problem of
the machine: disk full, unreadable file), 3 incomplete (requests failed: re-run to resume),
130/143 interrupted (Ctrl-C / SIGTERM)."""
from __future__ import annotations

import functools
import signal
import sys
import threading

INCOMPLETE_EXIT = 3


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, path: object = None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if field:
            message = f"field '{field}': {message}"
        super().__init__(f"{where}{message}")


class Incomplete(UserError):
    """Work is left because requests failed (server down, rejected, timed out): nothing failed was
    committed, so re-running the same command resumes and asks them again."""

    exit_code = INCOMPLETE_EXIT

    def __init__(self, stage: str, failed: int, error: str):
        self.stage, self.failed = stage, failed
        super().__init__(f"{stage}: {failed} request(s) failed (last: {error[:200]}); nothing failed was kept. "
                         "Re-run the same command to resume")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the same clean stop, its own exit code."""


def _terminate(signum, frame):
    raise Terminated()


def user_errors(fn):
    """CLI decorator: report UserError (and OS errors such as a full disk) as one line on stderr with
    its exit code, no traceback; SIGTERM and Ctrl-C stop cleanly with the same message."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main else None
        try:
            return fn(*a, **kw)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(e.exit_code)
        except OSError as e:  # the machine, not the code: disk full, a directory where a file goes, ...
            where = f"{e.filename}: " if e.filename else ""
            print(f"error: {where}{e.strerror or e}", file=sys.stderr, flush=True)
            sys.exit(2)
        except KeyboardInterrupt as e:
            print("interrupted; re-run the same command to resume", file=sys.stderr, flush=True)
            sys.exit(143 if isinstance(e, Terminated) else 130)
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
    return wrapper
