"""The Ray cluster a run's executor uses: its settings (the `ray:` section of a pipeline config), the
check that Ray Data is installed, and the connection (a given address, or a local cluster owned by the run)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...io.errors import UserError
from ...io.settings import setting


@dataclass
class RayOptions:
    """Where and how wide batch stages run with `executor: ray`."""
    address: str | None = setting(None, flag="--ray-address",
                                  help="Ray cluster address (e.g. auto, or HOST:6379); null: a local cluster "
                                       "started for this run and stopped after it")
    replicas: int = setting(1, min=1, help="engine replicas (data parallel): one vLLM engine each")
    tensor_parallel_size: int = setting(1, min=1, help="GPUs per replica (tensor parallel)")
    pipeline_parallel_size: int = setting(1, min=1, help="stages per replica (pipeline parallel)")
    batch_size: int = setting(64, min=1, help="rows Ray hands a replica at once")
    job_requests: int = setting(4096, min=1, help="requests per Ray Data job (consecutive batches); "
                                                   "replicas are started once per job")
    num_cpus: int | None = setting(None, min=1, help="logical CPUs of the local cluster (null: Ray's default, "
                                                     "at least 4: the engine actors and the reading tasks "
                                                     "take fractional CPUs, see README)")


def require_ray():
    """`import ray`, or a one-line error (exit 2) that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (ray without the [data] extra has no Ray Data)
    except ImportError:
        raise UserError("executor: ray needs Ray Data, which is not installed: pip install -e '.[ray]' "
                        "(ray[data]==2.60.0)") from None
    return ray


def cluster_has_gpus() -> bool:
    """Whether the connected cluster has GPUs: where engine replicas run, whatever this process runs on
    (a driver on a CPU-only head node still places its replicas on the GPU nodes)."""
    import ray
    return bool(ray.cluster_resources().get("GPU"))


class Session:
    """A connection to a Ray cluster: the given address, or a local cluster owned by this run. When
    Ray is already initialised (a caller's cluster: tests, notebooks) it is used and left running."""

    def __init__(self, opts: RayOptions):
        ray = require_ray()
        self.owned = not ray.is_initialized()
        if self.owned:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            # vLLM's settings in this process's environment (VLLM_BATCH_INVARIANT, ...) reach the replicas
            # on every node: they run in Ray's workers, whose environment is the one `ray start` had
            env = {k: v for k, v in os.environ.items() if k.startswith("VLLM_")}
            if opts.address:
                kwargs["address"] = opts.address
            else:
                # Engine actors and CPU-side tasks hold fractional CPUs; with as many logical CPUs as
                # cores (2 here) the vLLM actor and the read tasks wait for each other forever.
                kwargs["num_cpus"] = opts.num_cpus or max(4, os.cpu_count() or 1)
                # workers import the same selfinstruct as this process (a checkout, not another install)
                env["PYTHONPATH"] = package_root()
            if env:
                kwargs["runtime_env"] = {"env_vars": env}
            ray.init(**kwargs)

    def close(self) -> None:
        if self.owned:
            import ray
            ray.shutdown()
            self.owned = False


def package_root() -> str:
    return str(Path(__file__).resolve().parents[3])


