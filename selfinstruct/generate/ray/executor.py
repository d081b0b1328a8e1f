"""The Ray executor: a batch stage's requests run as Ray Data jobs on a Ray cluster (N engine replicas),
while this process stays the single writer that processes and commits each batch, as with the local one.

It keeps the `Executor` contract (executor.py): batches come back in batch order, each completion
matched to its request by index. Ray Data does not keep row order, so every row carries its batch and
request index and the results are put back by them; a request carries its own seed, so a task that Ray
retries (a replica or worker killed mid-job) gives the same answer. Consecutive batches are grouped into
one job of up to `ray.job_requests` requests (engine replicas start once per job, not per batch); a batch
is handed back, and committed, as soon as all of its rows are in. What runs the rows is a `RayEngine`
(ray_engines.py): vLLM replicas through `ray.data.llm`, or the fake test backend in an actor pool.

Ray is optional: nothing here imports it at module level, and `require_ray` turns its absence into a
one-line error naming the extra to install."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator, Protocol

from ...backends.base import Completion, Request
from ..executor import Batch, Failed
from .cluster import RayOptions

# columns of our own in every row (Ray's stages pass unknown columns through)
BATCH_COL, ROW_COL = "si_batch", "si_row"


class RayEngine(Protocol):
    """What runs the rows of a job. `row(request)`: the columns of one request (prompt as token ids,
    sampling parameters with its seed); `process(dataset)`: the dataset of answers, in any order, every
    input column kept; `completion(row, request)`: the `Completion` the local backend would have made."""

    def row(self, request: Request) -> dict[str, Any]:
        ...

    def process(self, ds):
        ...

    def completion(self, row: dict[str, Any], request: Request) -> Completion:
        ...


class RayExecutor:
    def __init__(self, engine: RayEngine, opts: RayOptions):
        self.engine, self.opts = engine, opts

    def jobs(self, batches: Iterator[Batch], requests: Callable[[Batch], list[Request]]
             ) -> Iterator[list[tuple[Batch, list[Request]]]]:
        """Consecutive batches with their requests, up to `job_requests` requests (at least one batch)."""
        job: list[tuple[Batch, list[Request]]] = []
        n = 0
        for batch in batches:
            reqs = requests(batch)
            if job and n + len(reqs) > self.opts.job_requests:
                yield job
                job, n = [], 0
            job.append((batch, reqs))
            n += len(reqs)
        if job:
            yield job

    def map(self, batches: Iterable[Batch], requests: Callable[[Batch], list[Request]]
            ) -> Iterator[tuple[Batch, list[Completion]]]:
        for job in self.jobs(iter(batches), requests):
            yield from self.run_job(job)

    def run_job(self, job: list[tuple[Batch, list[Request]]]) -> Iterator[tuple[Batch, list[Completion]]]:
        import ray

        rows = [{BATCH_COL: b, ROW_COL: i, **self.engine.row(r)}
                for b, (_, reqs) in enumerate(job) for i, r in enumerate(reqs)]
        got: list[dict[int, Completion]] = [{} for _ in job]
        ready = 0  # batches handed back
        if rows:
            ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), self.opts.replicas * 4)))
            try:
                for row in self.engine.process(ds).iter_rows():
                    b, i = int(row[BATCH_COL]), int(row[ROW_COL])
                    if i in got[b]:  # a retried task's rows arrive once: a second copy is a bug upstream
                        raise RuntimeError(f"Ray returned request {b}:{i} twice")
                    got[b][i] = self.engine.completion(row, job[b][1][i])
                    while ready < len(job) and len(got[ready]) == len(job[ready][1]):
                        yield job[ready][0], [got[ready][k] for k in range(len(job[ready][1]))]
                        got[ready] = {}
                        ready += 1
            except ray.exceptions.RayError as e:
                # the job failed for good (Ray retried what it could): nothing of it past the last
                # complete batch is committed, and a re-run asks the rest again with the same seeds
                lost = sum(len(r) for _, r in job[ready:])
                raise Failed(lost, one_line(e)) from None
        while ready < len(job):
            if len(got[ready]) != len(job[ready][1]):
                raise Failed(len(job[ready][1]) - len(got[ready]), "Ray returned fewer rows than it was given")
            yield job[ready][0], [got[ready][k] for k in range(len(job[ready][1]))]
            ready += 1

    def close(self) -> None:
        pass


def one_line(e: BaseException) -> str:
    """The root cause of a failed Ray job, in one line: Ray wraps the user code's exception in several
    layers, whose texts quote its traceback (its own line last) above Ray's advice on retries."""
    raised: list[str] = []
    for _ in range(10):
        raised += [s.strip() for s in str(e).splitlines()
                   if re.match(r"^[\w.]+(Error|Exception): ", s.strip()) and "UserCodeException" not in s]
        inner = getattr(e, "cause", None) or e.__cause__
        if not isinstance(inner, BaseException) or inner is e:
            break
        e = inner
    if raised:
        return raised[-1][:300]
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return f"{type(e).__name__}: {lines[-1][:300]}" if lines else type(e).__name__
