"""One writer per run directory: an exclusive `flock` on RUN/.lock, which the kernel releases when the
process dies (kill -9 included), so a stale lock never needs cleaning up. Readers (`stats`, `show`,
`verify`) take no lock."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import UserError

LOCK_FILE = ".lock"


class RunLock:
    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"{self.run_dir} is in use by another selfinstruct process (pid {holder}); "
                            "wait for it to finish, or use another output directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None
