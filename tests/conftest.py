import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every vLLM engine the tests start (in process, `vllm serve`, Ray replicas: they inherit the environment)
# gets 1 GiB of KV cache, not the ~4 GiB a CPU engine reserves: `make test` runs two processes' engines at
# once, and a tensor-parallel test's three workers each reserve their own, which ran a 24 GB machine out
# of memory (the kernel killed engine workers). The tests' prompts need a few thousand tokens of cache.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
SHARED = ROOT.parent / "shared" / "data"
SHARED_SEEDS = SHARED / "self_instruct_seed_tasks.jsonl"
PROJECT_SEEDS = ROOT / "seed_tasks" / "seed_tasks.jsonl"

# Test lanes (README, "Tests"): `engine` (a real vLLM engine or server, or Ray) and `slow` (CPU training,
# a subprocess, or more than ~3 s) are declared on the tests; every other test is `fast`, and a fast test
# must finish in FAST_TIMEOUT_S, setup and teardown included (pytest-timeout). `integration` is the old
# name of `engine`: both marks select the same tests. `make test` runs the fast lane beside the Ray
# tests (scripts/test.sh) and gives it more (SELFINSTRUCT_FAST_TIMEOUT_S): there it shares the cores, and
# `make test-fast` is the lane that holds each test to 5 s.
FAST_TIMEOUT_S = float(os.environ.get("SELFINSTRUCT_FAST_TIMEOUT_S", 5))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the marks added here
def pytest_collection_modifyitems(config, items):
    for item in items:
        engine = item.get_closest_marker("engine") or item.get_closest_marker("integration")
        if engine:
            item.add_marker("engine")
            item.add_marker("integration")
        elif not item.get_closest_marker("slow"):
            item.add_marker("fast")
            # first in the item's own marks, so the closest: it overrides a module's or the test's own
            # timeout (pytest-timeout reads item.get_closest_marker("timeout")). Needs more? Mark it slow.
            item.add_marker(pytest.mark.timeout(FAST_TIMEOUT_S), append=False)


@pytest.fixture
def shared_seeds():
    if not SHARED_SEEDS.exists():
        pytest.skip("../shared/data/self_instruct_seed_tasks.jsonl not available")
    return SHARED_SEEDS


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


JUDGED = "[bootstrap, classify, instances, filter, judge, select]"


def judged_config(tmp_path: Path, *, select: str = "min_score: 4", judge: str = "batch_size: 4",
                  stages: str = JUDGED, instructions: int = 40, name: str = "p"):
    """A small pipeline through the judge and select stages (sections as YAML flow-mapping bodies)."""
    from selfinstruct.generate.config import load_config

    p = tmp_path / f"{name}.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nstages: {stages}\n"
                 f"bootstrap: {{num_instructions: {instructions}, requests_per_round: 4}}\n"
                 f"judge: {{{judge}}}\nselect: {{{select}}}\n")
    return load_config(p)


def stage_rows(run: Path, stage: str, rejects: bool = False) -> list:
    from selfinstruct.io.shards import read_stage_rows

    return list(read_stage_rows(run / stage, rejects=rejects))


def run_files(run: Path) -> dict[str, bytes]:
    """Every file a run wrote, by path, with its bytes; less what differs between equal runs (its
    run.json names the config file, the lock and the log)."""
    return {str(f.relative_to(run)): f.read_bytes() for f in sorted(run.rglob("*"))
            if f.is_file() and f.name not in ("run.json", ".lock", "selfinstruct.log")}


def dying(backend, polls: int):
    """`backend`, killed (a KeyboardInterrupt, as a kill mid-run) at its poll number `polls` + 1."""
    poll, left = backend.poll, [polls]

    def dies():
        left[0] -= 1
        if left[0] < 0:
            raise KeyboardInterrupt("simulated crash")
        return poll()

    backend.poll = dies
    return backend
