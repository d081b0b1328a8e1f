"""K engine replicas held by Ray, as one `Backend`: how the bootstrap (an iterative generator stage) runs
on many engines with `executor: ray`.

The generator keeps its single writer: the driver's `rounds.RoundsRunner` builds each round from the
pool, owns the exact ROUGE-L index, processes answers in request order and commits. Only its requests
fan out: `start` queues a request for the least-loaded replica, `poll` sends what is queued (one call
per replica) and waits until some replica hands back finished answers. A replica is a Ray actor that
holds one of the project's own backends (the in-process vLLM engine, or the fake test backend) and
exposes the same start/poll/abort primitives, so its engine batches whatever it was sent. An answer
depends only on its request (prompt and seed), not on the replica that made it, so the dataset for a
seed is the one a single engine makes (for vLLM: at max_num_seqs=1, see the README on batch invariance)."""
from __future__ import annotations

from typing import Any, Hashable

from ...backends import backend_spec, create_backend
from ...backends.base import Backend, Completion, Request
from .engines import replica_options
from .cluster import RayOptions, cluster_has_gpus
from .executor import one_line


class Replica:
    """One engine on a Ray worker. Requests are keyed by the driver's handles."""

    def __init__(self, backend: str, model: str, options: Any, seed: int):
        self.backend = create_backend(backend, model, options, seed=seed)
        self.keys: dict[Hashable, int] = {}  # the backend's handle -> the driver's

    def submit(self, items: list[tuple[int, Request]]) -> None:
        for key, request in items:
            self.keys[self.backend.start(request)] = key

    def poll(self) -> list[tuple[int, Completion]]:
        return [(self.keys.pop(h), c) for h, c in self.backend.poll() if h in self.keys]

    def abort(self, keys: list[int]) -> None:
        drop = set(keys)
        handles = [h for h, k in self.keys.items() if k in drop]
        for h in handles:
            del self.keys[h]
        self.backend.abort(handles)

    def capacity(self, request: Request) -> int:
        return self.backend.capacity(request)

    def close(self) -> None:
        self.backend.close()


class RayReplicas(Backend):
    def __init__(self, backend: str, model: str, options: Any, ray_opts: RayOptions, seed: int = 0):
        import ray

        self.model, self.kind = model, backend
        gpus = ray_opts.tensor_parallel_size * ray_opts.pipeline_parallel_size
        # an in-process engine needs its GPUs on the replica's node; on a CPU machine, a share of a CPU
        # (the engine runs in its own process; Ray must not wait for whole CPUs that are not there)
        resources = {"num_gpus": gpus} if backend_spec(backend).in_process and cluster_has_gpus() else {"num_cpus": 0.25}
        actor = ray.remote(**resources)(Replica)
        options = replica_options(options, ray_opts)
        self.replicas = [actor.remote(backend, model, options, seed) for _ in range(ray_opts.replicas)]
        self.queued: list[list[tuple[int, Request]]] = [[] for _ in self.replicas]
        self.load = [0] * len(self.replicas)  # requests started on each, not finished
        self.where: dict[int, int] = {}  # driver handle -> replica
        self.polls: dict[Any, int] = {}  # pending poll call -> replica
        self.next_key = 0
        self.cap: int | None = None
        self.dead: dict[int, str] = {}  # replica -> why (its actor died; it gets no more requests)

    def start(self, request: Request) -> int:
        r = min(range(len(self.replicas)), key=lambda i: (i in self.dead, self.load[i]))
        self.next_key += 1
        self.queued[r].append((self.next_key, request))
        self.load[r] += 1
        self.where[self.next_key] = r
        return self.next_key

    def poll(self) -> list[tuple[int, Completion]]:
        import ray

        out: list[tuple[int, Completion]] = []
        for r, items in enumerate(self.queued):
            if items and r in self.dead:
                out += self.lost(r)
            elif items:
                self.replicas[r].submit.remote(items)  # a replica runs its calls in order: before its next poll
                self.queued[r] = []
        while not out:
            busy = set(self.polls.values())
            for r in range(len(self.replicas)):
                if self.load[r] and r not in busy:
                    self.polls[self.replicas[r].poll.remote()] = r
            if not self.polls:
                return []
            ray.wait(list(self.polls), num_returns=1)
            ready, _ = ray.wait(list(self.polls), num_returns=len(self.polls), timeout=0)  # all that are done
            for ref in ready:
                r = self.polls.pop(ref)
                try:
                    done = ray.get(ref)
                except ray.exceptions.RayError as e:
                    # the replica's actor died: its requests failed, like a dead server's, and take the
                    # pipeline's one failure path (the stage stops, exit 3, a re-run asks them again)
                    self.dead[r] = one_line(e)
                    out += self.lost(r)
                    continue
                for key, c in done:
                    if key in self.where:  # else: aborted meanwhile
                        self.load[self.where.pop(key)] -= 1
                        out.append((key, c))
        return out

    def lost(self, r: int) -> list[tuple[int, Completion]]:
        """Every request held by dead replica r, as a failed completion."""
        keys = [k for k, where in self.where.items() if where == r]
        for k in keys:
            del self.where[k]
        self.load[r], self.queued[r] = 0, []
        return [(k, Completion("", error=f"Ray replica {r} died: {self.dead[r]}")) for k in keys]

    def abort(self, handles: list[int]) -> None:
        by: dict[int, list[int]] = {}
        for h in handles:
            r = self.where.pop(h, None)
            if r is not None:
                self.load[r] -= 1
                by.setdefault(r, []).append(h)
        for r, keys in by.items():
            self.queued[r] = [(k, q) for k, q in self.queued[r] if k not in set(keys)]
            self.replicas[r].abort.remote(keys)

    def capacity(self, request: Request) -> int:
        import ray

        if self.cap is None:
            self.cap = ray.get(self.replicas[0].capacity.remote(request))
        return self.cap * len(self.replicas)

    def close(self) -> None:
        import ray

        replicas, self.replicas = getattr(self, "replicas", []), []
        for r, a in enumerate(replicas):
            if r not in self.dead:
                try:
                    ray.get(a.close.remote())  # engines verify they let their memory go
                except ray.exceptions.RayActorError:  # died since: nothing left to close
                    pass
            ray.kill(a)
