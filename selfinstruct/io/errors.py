"""User-facing errors: one line, naming file, line and field; exit code 2."""
from __future__ import annotations

import functools
import sys


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


def user_errors(fn):
    """CLI decorator: report UserError as one line on stderr with its exit code (2), no traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            print("interrupted; re-run the same command to resume", file=sys.stderr, flush=True)
            sys.exit(130)
    return wrapper
