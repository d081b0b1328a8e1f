"""Executors run the requests of batch stages; stages never know where.

The contract an executor keeps (a distributed one too): `map(batches)` yields each input batch with its
completions, in batch order, each completion matched to its input row by index whatever order they
finished in; a request carries its own seed, so running it again (a retry, a resumed run) gives the
same answer; the input is consumed lazily, so a stage streams its input shard by shard instead of
loading it whole. `LocalExecutor` keeps one backend busy through a `scheduler.Window`: the requests
of later batches run while a batch is processed and committed."""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator, Protocol

from ..backends.base import Backend, Completion, Request
from ..io.errors import Incomplete
from ..io.records import Record
from ..io.shards import StageStore
from .scheduler import TooManyFailures, Window
from .stage import BatchStage, Records

Batch = list[Record]


class Executor(Protocol):
    def map(self, batches: Iterable[Batch], requests: Callable[[Batch], list[Request]]
            ) -> Iterator[tuple[Batch, list[Completion]]]:
        ...

    def close(self) -> None:
        ...


class LocalExecutor:
    """Requests of this process's backend, through one request window."""

    def __init__(self, backend: Backend, max_failures: int | None = None):
        self.window = Window(backend, max_failures=max_failures)

    def map(self, batches: Iterable[Batch], requests: Callable[[Batch], list[Request]]
            ) -> Iterator[tuple[Batch, list[Completion]]]:
        todo = iter(batches)
        queued = 0  # batches added to the window, not handed back
        while True:
            # top up: keep at least a window's worth (and one batch) of requests queued ahead
            while self.window.queued < max(self.window.limit, 1) or not queued:
                batch = next(todo, None)
                if batch is None:
                    break
                self.window.add(batch, requests(batch))
                queued += 1
            if not queued:
                return
            try:
                g, comps = self.window.next_group()
            except TooManyFailures as e:
                raise Failed(self.window.failed, e.error) from None
            queued -= 1
            yield g.key, comps

    def close(self) -> None:
        self.window.close()


class Failed(Exception):
    """Requests failed for good (after the backend's retries); raised by `map` when a server is down."""

    def __init__(self, failed: int, error: str):
        self.failed, self.error = failed, error
        super().__init__(error)


def batches(records: Iterator[Record], size: int) -> Iterator[Batch]:
    while batch := list(itertools.islice(records, size)):
        yield batch


def run_batch_stage(stage: BatchStage, store: StageStore, inputs: Records) -> None:
    """Process the input shard by shard (one committed part per batch); a resumed run skips the
    batches committed before."""
    ctx = stage.ctx
    done = store.state.get("inputs_done", 0)
    total = inputs.num_rows()
    totals = store.totals()
    kept_n, rej_n = totals["kept"], totals.dropped("record")
    bar = ctx.progress(total, stage.name, initial=done)
    bar.set_postfix(kept=kept_n, rejected=rej_n)
    todo = batches(itertools.islice(inputs.records(), done, None), stage.batch_size)
    executor = ctx.executor_for(stage.name) if stage.uses_model else None
    try:
        answered = executor.map(todo, stage.requests) if executor else ((b, []) for b in todo)
        for batch, comps in answered:
            failed = [c for c in comps if c.error]
            if failed:  # never committed: the batch is asked again on resume, with the same seeds
                raise Failed(len(failed), failed[-1].error or "")
            result = stage.process(batch, comps)
            counts = result.counts
            if comps:
                counts.add("requests", len(comps))
                counts.add("prompt_tokens", sum(c.prompt_tokens for c in comps))
                counts.add("completion_tokens", sum(c.completion_tokens for c in comps))
            counts.add("kept", len(result.rows))
            done += len(batch)
            store.commit(result.rows, result.rejects, state={"inputs_done": done}, counts=counts)
            kept_n += len(result.rows)
            rej_n += counts.dropped("record")
            bar.update(len(batch))
            bar.set_postfix(kept=kept_n, rejected=rej_n)
    except Failed as e:
        raise Incomplete(stage.name, e.failed, e.error) from None
    finally:
        if executor:
            executor.close()
        bar.close()
    store.finish()
