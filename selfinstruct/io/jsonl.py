"""JSONL reading with precise errors, and atomic writes (temp file + fsync + rename)."""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import UserError


MAX_LINE_BYTES = 16 << 20  # one record; a longer line is not data this project writes or reads


def read_regular(path: str | os.PathLike, missing: str = "file not found") -> bytes:
    """The bytes of a regular file. A device (/dev/zero), a FIFO or a socket is refused: reading it
    would never end or would block forever."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(missing, path=path) from None
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError("is a directory, expected a file", path=path)
    if not stat.S_ISREG(st.st_mode):
        raise UserError("not a regular file (a device, FIFO or socket)", path=path)
    try:
        return path.read_bytes()
    except PermissionError:
        raise UserError("permission denied", path=path) from None


def iter_lines(path: str | os.PathLike, missing: str = "file not found") -> Iterator[tuple[int, str]]:
    """(line number, line) for each non-blank line, decoded as UTF-8; errors name file:line."""
    raw = read_regular(path, missing)
    for lineno, bline in enumerate(raw.splitlines(), 1):
        if len(bline) > MAX_LINE_BYTES:
            raise UserError(f"line longer than {MAX_LINE_BYTES >> 20} MiB", path=path, line=lineno)
        try:
            line = bline.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"not valid UTF-8 (byte {e.start})", path=path, line=lineno) from None
        if line.strip():
            yield lineno, line


def parse_line(line: str, path: str | os.PathLike, lineno: int) -> dict[str, Any]:
    """One JSONL line as an object; anything else is a UserError naming file:line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=lineno) from None
    if not isinstance(obj, dict):
        raise UserError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=lineno)
    return obj


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each non-blank line; raise UserError naming file:line on bad data."""
    for lineno, line in iter_lines(path):
        yield lineno, parse_line(line, path, lineno)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    return [obj for _, obj in iter_jsonl(path)]


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path so that readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; written files follow the umask like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            raise UserError("is a directory, expected a file", path=path) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> bytes:
    data = "".join(dumps(r) + "\n" for r in rows).encode("utf-8")
    atomic_write_bytes(path, data)
    return data


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
