"""executor: ray. With the same completions (the deterministic fake backend, run in Ray actors) the Ray
executor makes exactly the local executor's decisions and writes the same bytes; a replica killed
mid-job is retried by Ray to the same result; a job that fails for good commits nothing of it and a
re-run resumes; `kill -9` of the driver and a re-run give the same dataset. Also what Ray is asked to
place for a replica on GPU and CPU clusters (no engine starts). One local Ray cluster for
the module (started and stopped here); every test has a hard timeout (a misplaced actor waits forever).
The tests on that cluster are in the `engine` lane; the two that start no Ray are `fast`."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.io.errors import Incomplete, UserError

from .conftest import PROJECT_SEEDS, ROOT, run_files

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytestmark = pytest.mark.timeout(240)

STAGES = "[bootstrap, classify, instances, filter, judge, select, export]"
SHORT = "[bootstrap, classify, instances]"  # the fault tests: one batch stage after the generator is enough


@pytest.fixture(scope="module")
def cluster():
    # 4 logical CPUs on any machine: actors take fractional CPUs and must not wait for the read tasks
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # workers import this checkout (and tests/)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def config(tmp_path: Path, executor: str = "local", stages: str = STAGES, **ray_opts):
    p = tmp_path / f"{executor}.yaml"
    opts = {"replicas": 2, "batch_size": 3, "job_requests": 40, **ray_opts}
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\nexecutor: {executor}\nstages: {stages}\n"
                 f"ray: {json.dumps(opts)}\n"
                 "bootstrap: {num_instructions: 24, requests_per_round: 4}\n"
                 "classify: {batch_size: 5}\ninstances: {batch_size: 4}\n"
                 "judge: {batch_size: 4}\nselect: {min_score: 3}\n")
    return load_config(p)


def local_files(tmp_path: Path, stages: str = STAGES) -> dict[str, bytes]:
    """The local executor's run of the same config (the fake backend: a fraction of a second)."""
    tmp = tmp_path / "local-run"
    tmp.mkdir()
    run_pipeline(config(tmp, stages=stages), tmp / "run", quiet=True)
    return run_files(tmp / "run")


def without_config_hash(card: bytes) -> list[bytes]:
    return [line for line in card.splitlines() if not line.startswith(b"- pipeline config sha256:")]


@pytest.mark.engine
def test_ray_executor_writes_the_local_executors_bytes(cluster, tmp_path):
    local_run = local_files(tmp_path)
    cfg = config(tmp_path, "ray")
    assert cfg.executor == "ray" and cfg.ray.replicas == 2
    run_pipeline(cfg, tmp_path / "run", quiet=True)
    got = run_files(tmp_path / "run")
    assert sorted(got) == sorted(local_run)
    for name in local_run:  # every part, reject file, manifest and export file
        if name == "export/README.md":  # the dataset card names the config's hash, and `executor` is in it
            assert without_config_hash(got[name]) == without_config_hash(local_run[name])
            continue
        assert got[name] == local_run[name], name
    manifest = json.loads(got["instances/manifest.json"])
    assert len(manifest["parts"]) > 3  # several batches, over several Ray jobs (job_requests: 40)


@pytest.mark.engine
def test_out_of_order_rows_are_put_back_by_index(cluster):
    """The fake engine shuffles its answers; each must still reach its own request and batch."""
    from selfinstruct.backends import Request
    from selfinstruct.backends.fake import FakeBackend, FakeOptions
    from selfinstruct.generate.ray.engines import FakeRayEngine
    from selfinstruct.generate.ray.cluster import RayOptions
    from selfinstruct.generate.ray.executor import RayExecutor

    opts = RayOptions(replicas=2, batch_size=2, job_requests=7)
    batches = [list(range(b * 3, b * 3 + 3)) for b in range(5)] + [[]]
    ask = lambda b: [Request(f"Task: {i}\n", seed=i) for i in b]  # noqa: E731
    out = list(RayExecutor(FakeRayEngine(FakeOptions(order_seed=3), opts), opts).map(batches, ask))
    assert [b for b, _ in out] == batches
    want = FakeBackend()
    for b, comps in out:
        assert [c.text for c in comps] == [want.answer(r) for r in ask(b)]


class Crashing:
    """A fake replica whose process dies (kill -9) on its first batch while `marker` exists."""

    def __init__(self, marker: str):
        from selfinstruct.generate.ray.engines import FakeEngineActor
        self.inner, self.marker = FakeEngineActor({}), marker

    def __call__(self, batch):
        try:
            os.unlink(self.marker)  # one replica wins the marker (both may see it), and dies
        except FileNotFoundError:
            return self.inner(batch)
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.engine
def test_a_replica_killed_mid_job_is_retried_to_the_same_result(cluster, tmp_path, monkeypatch):
    from selfinstruct.generate.ray import engines as ray_engines

    marker = tmp_path / "crash-once"
    marker.touch()

    def process(self, ds):
        return ds.map_batches(Crashing, fn_constructor_kwargs={"marker": str(marker)}, concurrency=2,
                              batch_size=3, num_cpus=0.25).random_shuffle(seed=1)

    monkeypatch.setattr(ray_engines.FakeRayEngine, "process", process)
    run_pipeline(config(tmp_path, "ray", stages=SHORT), tmp_path / "run", quiet=True)
    assert not marker.exists()  # a replica did die
    assert run_files(tmp_path / "run") == local_files(tmp_path, SHORT)


class Failing:
    def __init__(self):
        pass

    def __call__(self, batch):
        raise RuntimeError("replica out of memory")


@pytest.mark.engine
def test_a_failed_job_commits_nothing_of_it_and_a_rerun_resumes(cluster, tmp_path, monkeypatch):
    from selfinstruct.generate.ray import engines as ray_engines

    original = ray_engines.FakeRayEngine.process
    calls = []

    def process(self, ds):
        calls.append(1)
        if len(calls) == 2:  # the second job fails: the batches of the first are committed
            return ds.map_batches(Failing, concurrency=1, batch_size=3, num_cpus=0.25)
        return original(self, ds)

    monkeypatch.setattr(ray_engines.FakeRayEngine, "process", process)
    cfg = config(tmp_path, "ray", stages=SHORT, job_requests=12, replicas=1)  # one actor a job: each costs a process
    with pytest.raises(Incomplete, match="replica out of memory") as e:
        run_pipeline(cfg, tmp_path / "run", quiet=True)
    assert "\n" not in str(e.value) and e.value.exit_code == 3
    committed = json.loads((tmp_path / "run" / "classify" / "manifest.json").read_text())
    assert committed["parts"] and not committed.get("complete")  # the first job's batches, no more
    monkeypatch.setattr(ray_engines.FakeRayEngine, "process", original)
    run_pipeline(cfg, tmp_path / "run", quiet=True)
    assert run_files(tmp_path / "run") == local_files(tmp_path, SHORT)


@pytest.mark.engine
def test_kill_9_of_the_driver_then_a_rerun_gives_the_same_dataset(cluster, tmp_path):
    cfg_path = tmp_path / "ray.yaml"
    config(tmp_path, "ray", stages=SHORT, job_requests=12, replicas=1)  # writes ray.yaml; two jobs a stage: the kill lands between
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "selfinstruct.cli", "generate", "-c", str(cfg_path), "-o", str(run),
           "--executor", "ray", "--ray-address", cluster, "-q"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 150
    while not list((run / "instances").glob("part-*.jsonl")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    parts = list((run / "instances").glob("part-*.jsonl"))
    assert parts and not json.loads((run / "instances" / "manifest.json").read_text()).get("complete")
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert run_files(run) == local_files(tmp_path, SHORT)


def test_without_ray_executor_ray_fails_in_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from selfinstruct.cli import main
    from selfinstruct.generate.ray.cluster import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(UserError, match=r"pip install -e '\.\[ray\]'"):
        require_ray()
    config(tmp_path)
    r = CliRunner().invoke(main, ["generate", "-c", str(tmp_path / "local.yaml"), "-o", str(tmp_path / "run"),
                                  "--executor", "ray", "-q"])
    assert r.exit_code == 2 and "[ray]" in r.output and not (tmp_path / "run" / "bootstrap").exists()
    with pytest.raises(UserError, match="field 'executor': must be one of"):
        load_config(tmp_path / "local.yaml", {"executor": "dask"})


@pytest.mark.engine
def test_bootstrap_requests_fan_out_to_replicas_and_answers_match_one_engine(cluster):
    """The generator's single writer stays in the driver; its requests spread over K replicas held by
    Ray, and every answer is the one a single engine gives for that request (the pipeline test above
    also runs its bootstrap this way, and its bytes equal the local run's)."""
    from selfinstruct.backends import Request
    from selfinstruct.backends.fake import FakeBackend, FakeOptions
    from selfinstruct.generate.ray.cluster import RayOptions
    from selfinstruct.generate.ray.replicas import RayReplicas

    backend = RayReplicas("fake", "fake", FakeOptions(capacity=3), RayOptions(replicas=2))
    try:
        reqs = [Request(f"Task {i}:", seed=i) for i in range(12)]
        handles = [backend.start(r) for r in reqs]
        assert sorted(set(backend.where.values())) == [0, 1]  # both replicas are used
        assert backend.capacity(reqs[0]) == 6
        backend.abort(handles[-2:])
        got = {}
        while out := backend.poll():
            got.update(out)
        assert sorted(got) == handles[:-2]
        single = FakeBackend()
        assert [got[h].text for h in handles[:-2]] == [single.answer(r) for r in reqs[:-2]]
    finally:
        backend.close()


@pytest.mark.engine
def test_a_dead_replica_fails_its_requests_and_gets_no_more(cluster):
    """A replica whose actor dies is a dead server: its requests come back failed (never final data: the
    stage stops with exit 3 and a re-run asks them again), the others are answered, new requests go to
    the replicas still alive, and close() does not trip over the dead one."""
    from selfinstruct.backends import Request
    from selfinstruct.backends.fake import FakeBackend, FakeOptions
    from selfinstruct.generate.ray.cluster import RayOptions
    from selfinstruct.generate.ray.replicas import RayReplicas

    backend = RayReplicas("fake", "fake", FakeOptions(capacity=3), RayOptions(replicas=2))
    try:
        reqs = [Request(f"Task {i}:", seed=i) for i in range(8)]
        handles = [backend.start(r) for r in reqs]
        on_dead = {h for h in handles if backend.where[h] == 0}
        ray.kill(backend.replicas[0])
        got = {}
        while out := backend.poll():
            got.update(out)
        assert sorted(got) == handles
        assert all(got[h].error and "replica 0 died" in got[h].error for h in on_dead)
        single = FakeBackend()
        assert all(got[h].error is None and got[h].text == single.answer(r)
                   for h, r in zip(handles, reqs) if h not in on_dead)
        late = backend.start(Request("Task 99:", seed=99))
        assert backend.where[late] == 1
        assert dict(backend.poll())[late].text == single.answer(Request("Task 99:", seed=99))
    finally:
        backend.close()


@pytest.mark.engine
@pytest.mark.parametrize("gpus", [False, True])
def test_replicas_are_placed_by_the_clusters_resources(cluster, tmp_path, monkeypatch, gpus):
    """What Ray's LLM processor is asked for (no engine starts): exactly `replicas` engines (a fixed pool,
    not an autoscaling one that starts its later replicas only under a backlog), each over tensor x
    pipeline parallel workers: on a GPU cluster one GPU bundle per worker and vLLM's GPU settings, on a
    CPU cluster one CPU bundle each and the CPU settings. Decided by the cluster, not by this process's
    platform (a driver on a CPU-only head node places its replicas on the GPU nodes)."""
    from ray.data.llm import build_processor

    from selfinstruct.backends.vllm_engine import VllmOptions
    from selfinstruct.generate.ray import engines as ray_engines
    from selfinstruct.generate.ray.cluster import RayOptions

    monkeypatch.setattr(ray_engines, "cluster_has_gpus", lambda: gpus)
    for tp, pp in ((1, 1), (2, 2)):
        # vllm.tensor_parallel_size is the in-process engine's: a Ray replica takes the shape Ray reserved
        engine = ray_engines.VllmRayEngine(str(tmp_path), VllmOptions(tensor_parallel_size=4), RayOptions(
            replicas=8, tensor_parallel_size=tp, pipeline_parallel_size=pp))
        (stage,) = build_processor(engine.config()).stages.values()  # the vLLM stage alone: ours are off
        kw, args = stage.map_batches_kwargs, stage.fn_constructor_kwargs["engine_kwargs"]
        assert (kw["compute"].min_size, kw["compute"].max_size) == (8, 8)
        assert (args.get("tensor_parallel_size", 1), args.get("pipeline_parallel_size", 1)) == (tp, pp)
        assert ("enable_chunked_prefill" in args) is (not gpus)  # off on CPU only
        assert (args["gpu_memory_utilization"] == 0.9) is gpus
        if tp * pp == 1:  # one process per engine, on one GPU (or one CPU share)
            assert args["distributed_executor_backend"] == "uni"
            assert (kw.get("num_gpus"), kw.get("num_cpus")) == ((1, None) if gpus else (None, 1.0))
        elif gpus:  # vLLM's Ray executor places the 4 workers in a placement group: Ray's default bundles,
            # 4 x {"GPU": 1, "CPU": 1}, packed
            assert args["distributed_executor_backend"] == "ray" and kw["num_gpus"] == 0
            assert kw["ray_remote_args_fn"].args == (4, None, None)
        else:  # vLLM's CPU platform has no Ray executor: its own 4 processes, in an actor holding 4 CPUs
            assert args["distributed_executor_backend"] == "mp"
            assert (kw.get("num_gpus"), kw["num_cpus"]) == (None, 4.0) and "ray_remote_args_fn" not in kw


@pytest.mark.engine
def test_vllm_settings_of_the_driver_reach_the_workers_of_a_cluster(cluster):
    """VLLM_BATCH_INVARIANT=1 (or any VLLM_ variable) set for `selfinstruct generate` applies to its
    replicas on a cluster it connects to, whose workers have the environment `ray start` had."""
    script = ("import os, ray\n"
              "from selfinstruct.generate.ray.cluster import RayOptions, Session\n"
              f"s = Session(RayOptions(address={cluster!r}))\n"
              "env = lambda: (os.environ.get('VLLM_BATCH_INVARIANT'), os.environ.get('OTHER'))\n"
              "print(ray.get(ray.remote(num_cpus=0.25)(env).remote()))\n"
              "s.close()\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), VLLM_BATCH_INVARIANT="1", OTHER="x")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "('1', None)"


def test_a_replicas_engine_takes_the_shape_ray_reserved():
    """The bootstrap's replica actors (and the batch stages' replicas, above) run engines of exactly
    `ray.tensor_parallel_size` x `ray.pipeline_parallel_size` workers, whatever the in-process engine's
    `vllm.tensor_parallel_size`; the fake backend's options pass as they are."""
    from selfinstruct.backends.fake import FakeOptions
    from selfinstruct.backends.vllm_engine import VllmOptions
    from selfinstruct.generate.ray import engines as ray_engines
    from selfinstruct.generate.ray.cluster import RayOptions

    shaped = ray_engines.replica_options(VllmOptions(tensor_parallel_size=4, extra={"max_num_seqs": 1}),
                                         RayOptions(tensor_parallel_size=2, pipeline_parallel_size=3))
    assert shaped.tensor_parallel_size == 2 and shaped.extra == {"max_num_seqs": 1, "pipeline_parallel_size": 3}
    assert ray_engines.replica_options(FakeOptions(capacity=3), RayOptions(tensor_parallel_size=2)) == \
        FakeOptions(capacity=3)
