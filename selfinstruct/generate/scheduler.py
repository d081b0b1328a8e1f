"""Keeps the backend full and hands results back in order.

A stage adds requests in groups (a bootstrap round, a batch of instructions: one shard each). The
`Window` starts them one by one, up to `limit` in flight, and starts the next one as soon as any
request finishes, so the engine's batch stays full across group boundaries instead of draining at
the end of every round. Requests finish in any order; `next()` returns them in the order they were
added, which is what keeps a run deterministic (and resumable to the same dataset) whatever the
timing. An optional `gate` holds back new starts (near the end of a run, when the requests in flight
are expected to be enough); it is only asked while some started request has not been handed back,
so the window never stalls.

A request that failed (its completion carries an `error`) is handed back like any other; the stage
decides (it stops before committing it). When `max_failures` requests fail in a row, the server is
plainly down: `next()` raises `TooManyFailures` instead of starting more requests that would fail."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from ..backends.base import Backend, Completion, Request


class TooManyFailures(Exception):
    def __init__(self, failed: int, error: str):
        self.failed, self.error = failed, error
        super().__init__(f"{failed} requests failed in a row (last: {error})")


@dataclass
class Group:
    key: Any
    requests: list[Request]
    meta: Any = None
    results: list[Completion | None] = field(default_factory=list)

    def __post_init__(self):
        self.results = [None] * len(self.requests)


class Window:
    def __init__(self, backend: Backend, limit: int | None = None,
                 gate: Callable[["Window"], bool] | None = None,
                 on_finish: Callable[[Group, int, Completion], None] | None = None,
                 max_failures: int | None = None):
        """limit=None: what the backend runs at once (`capacity` of the first request added) plus half
        as many queued behind them, so that the engine replaces a finished request without waiting
        for the caller's loop. `on_finish` sees each result as soon as it arrives, before its turn."""
        self.backend, self.gate, self.on_finish = backend, gate, on_finish
        self.limit = max(1, limit) if limit is not None else 0
        self.capacity = self.limit
        self.groups: deque[Group] = deque()   # added, not fully handed back
        self._queue: deque[tuple[Group, int]] = deque()  # added, not started
        self._live: dict[Hashable, tuple[Group, int]] = {}  # started, not finished
        self._cursor = 0  # next request of groups[0] to hand back
        self.outstanding = 0  # started requests not handed back yet (finished or not)
        self.max_failures = max_failures
        self.failed = self.failed_in_a_row = 0  # completions with an error: all, and since the last success
        self.last_error = ""

    def add(self, key: Any, requests: list[Request], meta: Any = None) -> Group:
        g = Group(key, list(requests), meta)
        if not self.limit and g.requests:
            self.capacity = max(1, self.backend.capacity(g.requests[0]))
            self.limit = self.capacity * 3 // 2 + 1
        self.groups.append(g)
        self._queue.extend((g, i) for i in range(len(g.requests)))
        return g

    @property
    def queued(self) -> int:
        """Requests added but not started."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Requests started and not finished."""
        return len(self._live)

    def fill(self) -> None:
        while self._queue and len(self._live) < self.limit:
            if self.outstanding and self.gate is not None and not self.gate(self):
                break
            g, i = self._queue.popleft()
            self._live[self.backend.start(g.requests[i])] = (g, i)
            self.outstanding += 1

    def _collect(self) -> None:
        out = self.backend.poll()
        if not out and self._live:
            raise RuntimeError(f"{self.backend.kind or 'the'} backend lost {len(self._live)} request(s)")
        for h, c in out:
            where = self._live.pop(h, None)
            if where is not None:  # else: aborted earlier
                g, i = where
                g.results[i] = c
                if c.error:
                    self.failed += 1
                    self.failed_in_a_row += 1
                    self.last_error = c.error
                else:
                    self.failed_in_a_row = 0
                if self.on_finish is not None:
                    self.on_finish(g, i, c)

    def next(self) -> tuple[Group, int, Completion] | None:
        """The next result in the order requests were added (blocks until it is done); None when all
        added requests have been handed back. The window is topped up before returning, so the
        engine keeps working while the caller processes the result."""
        while self.groups and self._cursor >= len(self.groups[0].requests):  # empty groups
            self.groups.popleft()
            self._cursor = 0
        if not self.groups:
            return None
        g, i = self.groups[0], self._cursor
        while g.results[i] is None:
            if self.max_failures and self.failed_in_a_row >= self.max_failures:
                raise TooManyFailures(self.failed_in_a_row, self.last_error)
            self.fill()
            self._collect()
        self.fill()
        c = g.results[i]
        self._cursor += 1
        self.outstanding -= 1
        if self._cursor == len(g.requests):
            self.groups.popleft()
            self._cursor = 0
        return g, i, c

    def next_group(self) -> tuple[Group, list[Completion]] | None:
        """The next whole group, with its completions in request order (a group without requests, e.g. a
        batch whose records a stage passes on unasked, comes back in its turn with none)."""
        if self.groups and self._cursor == 0 and not self.groups[0].requests:
            return self.groups.popleft(), []
        first = self.next()
        if first is None:
            return None
        g, i, c = first
        out = [c]
        while i + 1 < len(g.requests):
            g, i, c = self.next()
            out.append(c)
        return g, out

    def close(self) -> None:
        """Abort what is still running and forget what was not started."""
        if self._live:
            self.backend.abort(list(self._live))
        self._live.clear()
        self._queue.clear()
        self.outstanding = 0
        self.groups.clear()
        self._cursor = 0

