"""Where output goes. With -q, what libraries print (vLLM's and its engine process's logging, torch
and triton warnings, weight-loading bars) goes to a log file in the run directory, and the terminal
gets only this program's own lines: progress notes, errors and the summary.

Libraries write through Python (sys.stdout/sys.stderr, logging, warnings) and, in C++ code and child
processes, straight to file descriptors 1 and 2; both levels are redirected. `terminal()` is the
stream for this program's own notes, wherever the process's stderr points meanwhile."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from pathlib import Path
from typing import Iterator, TextIO

_terminal: TextIO | None = None


def terminal() -> TextIO:
    return _terminal or sys.stderr


@contextlib.contextmanager
def library_output_to(log_path: Path) -> Iterator[None]:
    global _terminal
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        real_fd = sys.stderr.fileno() == 2
    except (AttributeError, OSError, io.UnsupportedOperation):  # a test runner's capture buffer
        real_fd = False
    # our own notes keep going where stderr went before: a copy of fd 2, or the capture object; inside
    # another redirection (ablate around evaluate), still the terminal
    outer = _terminal
    term = outer or (os.fdopen(os.dup(2), "w", buffering=1) if real_fd else sys.stderr)
    saved_fds = [os.dup(1), os.dup(2)]
    log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
    saved_streams = sys.stdout, sys.stderr
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    _terminal = term
    try:
        yield
    finally:
        log.flush()
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        _terminal = outer
        if term is not saved_streams[1] and term is not outer:
            term.close()
        # A library that set its logging up inside (vLLM, when an engine starts: a handler on sys.stdout,
        # which was the log) keeps that stream: closed, its next record (an engine's shutdown, at exit) would
        # put "--- Logging error ---" and a traceback on the terminal. Left open, it goes on to the log.
        if not _logs_into(log):
            log.close()


def _logs_into(stream: TextIO) -> bool:
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    return any(getattr(h, "stream", None) is stream for x in loggers for h in x.handlers)
