"""The OpenAI-compatible backend against a real `vllm serve` on loopback, and crash safety: the
pipeline process is killed with SIGKILL at many points and re-run, and the server itself is killed
and restarted mid-run; the final dataset equals an uninterrupted run's."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from selfinstruct.generate.config import load_config
from selfinstruct.io.shards import read_stage_rows

from .conftest import ROOT
from .vllm_server import VllmServer

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]  # engine or server start: ~70 s each
STAGES = ("bootstrap", "classify", "instances", "filter")
CLI = os.path.join(os.path.dirname(sys.executable), "selfinstruct")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from selfinstruct.models import prepare_embedded_model

    srv = VllmServer(str(prepare_embedded_model()), log=tmp_path_factory.mktemp("srv") / "server.log").start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory):
    """One uninterrupted CLI run of the test config, and its duration: the dataset every fault test must
    end with (made once for the module: the runs are deterministic at max_concurrency 1)."""
    d = tmp_path_factory.mktemp("reference")
    cfg = write_config(d / "c.yaml", server.url)
    t0 = time.time()
    p = cli(cfg, d / "ref")
    assert p.wait(timeout=900) == 0, p.stderr.read()[-2000:]
    return d / "ref", time.time() - t0


def write_config(path: Path, url: str) -> Path:
    cfg = yaml.safe_load((ROOT / "pipelines" / "default.yaml").read_text())
    cfg["backend"] = "openai"
    cfg["seed_tasks"] = str(ROOT / "seed_tasks" / "seed_tasks.jsonl")
    # one request in flight at a time: the server then batches identically in every run, so sampling
    # with per-request seeds is reproducible across runs
    cfg["openai"] = {"base_urls": [url], "max_concurrency": 1, "timeout_s": 60, "max_retries": 12,
                     "backoff_s": 0.5}
    cfg["bootstrap"].update(num_instructions=6, requests_per_round=1)
    cfg["bootstrap"]["sampling"]["max_tokens"] = 80
    cfg["classify"]["batch_size"] = 2
    cfg["instances"].update(batch_size=2)
    cfg["instances"]["sampling"]["max_tokens"] = 60
    path.write_text(yaml.safe_dump(cfg))
    load_config(path)  # valid
    return path


def cli(cfg: Path, out: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([CLI, "generate", "-c", str(cfg), "-o", str(out), "-q"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def snapshot(run: Path) -> dict:
    out = {s: list(read_stage_rows(run / s)) for s in STAGES if (run / s / "manifest.json").exists()}
    exp = run / "export" / "train.messages.jsonl"
    out["export"] = exp.read_text() if exp.exists() else None
    return out


def check_consistent(run: Path) -> None:
    """Every committed part matches its manifest hash; every JSONL line is whole; no temp files."""
    import hashlib
    for stage_dir in run.iterdir():
        m = stage_dir / "manifest.json"
        if not m.exists():
            continue
        man = json.loads(m.read_text())
        for p in man["parts"]:
            data = (stage_dir / p["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == p["sha256"]
            assert data == b"" or data.endswith(b"\n")
            assert all(json.loads(l) for l in data.splitlines())


def test_openai_backend_generate_and_key_not_leaked(server, tmp_path, monkeypatch):
    from selfinstruct.backends import Request
    from selfinstruct.backends.openai_server import OpenAIBackend

    monkeypatch.setenv("SI_TEST_KEY", "sk-secret-value-123")
    cfg = load_config(write_config(tmp_path / "c.yaml", server.url))
    cfg.openai.api_key_env = "SI_TEST_KEY"
    be = OpenAIBackend(server.model, cfg.openai)
    assert "sk-secret" not in repr(be) and "sk-secret" not in json.dumps(be.describe())
    outs = be.generate([Request([{"role": "user", "content": "What is the capital of France?"}], max_tokens=20,
                                temperature=0.0),
                        Request("The capital of France is", max_tokens=5, temperature=0.0)])
    assert "Paris" in outs[0].text and outs[1].completion_tokens > 0 and not outs[0].error
    # a dead endpoint: bounded retries, then a recorded failure instead of an exception
    cfg.openai.base_urls, cfg.openai.max_retries, cfg.openai.backoff_s = ["http://127.0.0.1:9/v1"], 1, 0.01
    be = OpenAIBackend("m", cfg.openai, served_model="m")
    (out,) = be.generate([Request("hi", max_tokens=2)])
    assert out.error and "failed after 2 attempts" in out.error


def test_kill9_at_many_points_then_resume_gives_identical_dataset(server, reference, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", server.url)
    ref, duration = reference
    expected = snapshot(ref)
    assert len(expected["bootstrap"]) == 6 and expected["export"]

    run = tmp_path / "killed"
    rng = random.Random(1234)
    stages_hit = set()
    for i in range(10):
        p = cli(cfg, run)
        time.sleep(rng.uniform(1.0, max(2.0, duration / 4)))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        check_consistent(run)
        for s in STAGES:
            m = run / s / "manifest.json"
            if m.exists() and not json.loads(m.read_text())["complete"]:
                stages_hit.add(s)
    p = cli(cfg, run)
    assert p.wait(timeout=900) == 0, p.stderr.read()[-2000:]
    check_consistent(run)
    assert snapshot(run) == expected
    ids = [r["id"] for r in read_stage_rows(run / "bootstrap")]
    assert len(ids) == len(set(ids)) == 6
    assert stages_hit, "no kill landed inside a stage"


def test_server_killed_and_restarted_mid_run(server, reference, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", server.url)
    ref, _ = reference
    run = tmp_path / "run"
    p = cli(cfg, run)
    time.sleep(4)
    server.kill()
    time.sleep(2)
    server.start()
    assert p.wait(timeout=900) == 0, p.stderr.read()[-2000:]
    rejects = [r for s in STAGES for r in read_stage_rows(run / s, rejects=True)]
    assert not [r for r in rejects if r["reason"] == "request_failed"]
    assert snapshot(run) == snapshot(ref)


def test_an_outage_loses_nothing_and_the_rerun_is_identical(server, reference, tmp_path):
    """The server (behind a switchable proxy) answers 503 for a while: the run stops with exit code 3
    and nothing failed committed; re-running after the outage gives, at max_concurrency 1, exactly the
    dataset of a run that never saw it."""
    import urllib.error
    import urllib.request

    from selfinstruct.generate.pipeline import run_pipeline
    from selfinstruct.io.errors import Incomplete

    from .fault_server import FaultServer, Reply

    outage = {"from": 10**9, "on": True}
    base = server.url.rsplit("/v1", 1)[0]

    def proxy(req):
        if outage["on"] and req.n >= outage["from"]:
            return Reply(503, {"error": "maintenance"})
        data = json.dumps(req.body).encode() if req.path.endswith("completions") else None
        fwd = urllib.request.Request(base + req.path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(fwd, timeout=120) as r:
                return Reply(r.status, r.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.read())

    with FaultServer(proxy) as srv:
        cfg_path = write_config(tmp_path / "c.yaml", srv.url)
        cfg = load_config(cfg_path)
        cfg.openai.max_retries, cfg.openai.backoff_s = 2, 0.05
        outage["from"] = 9  # somewhere in the bootstrap rounds
        with pytest.raises(Incomplete) as e:
            run_pipeline(cfg, tmp_path / "run", quiet=True)
        assert e.value.failed >= 1
        check_consistent(tmp_path / "run")
        outage["on"] = False  # the server is back
        run_pipeline(cfg, tmp_path / "run", quiet=True)
    rejects = [r for s in STAGES for r in read_stage_rows(tmp_path / "run" / s, rejects=True)]
    assert not [r for r in rejects if r["reason"] == "request_failed"]
    ref, _ = reference  # the CLI's run straight to the server: records do not name the URL they came from
    for stage in [*STAGES, "export"]:
        for f in sorted((ref / stage).rglob("*.json*")):
            if f.name != "manifest.json":
                assert (tmp_path / "run" / stage / f.relative_to(ref / stage)).read_bytes() == f.read_bytes(), f


def test_pairwise_judge_on_a_server(server, tmp_path):
    """The pairwise suite's judge can be any OpenAI-compatible server (here the real `vllm serve`); the
    two models answer with transformers, so no second engine starts."""
    from selfinstruct.evals.run import run_evaluate

    data = tmp_path / "eval.prompt_completion.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": [{"role": "user", "content": q}],
                                        "completion": [{"role": "assistant", "content": "-"}]}) + "\n"
                            for i, q in enumerate(["Name a color.", "What is 2 + 2?"])))
    s = run_evaluate(server.model, server.model, data, tmp_path / "e.jsonl", suites=("pairwise",), judge=server.model,
                     judge_urls=(server.url,), engine="transformers", max_new_tokens=8, quiet=True, log=lambda m: None)
    notes = s["suites"]["pairwise"]["notes"]["tuned vs base"]
    assert s["models"]["base"]["engine"] == "transformers" and s["judge"] == server.model
    assert notes["wins"] + notes["ties"] + notes["losses"] == 2
    rows = [json.loads(x) for x in (tmp_path / "e.pairwise.jsonl").read_text().splitlines()]
    assert all(len(r["tuned_judge_raw"]) == 2 for r in rows)  # both orders asked, raw text kept


def test_structured_judge_answers_on_the_server(server):
    """The server path: the `structured_outputs` field reaches the real `vllm serve`, which answers with
    one of the scale's scores only."""
    from selfinstruct.backends.openai_server import OpenAIBackend, OpenAIOptions

    from .test_integration import judge_texts

    backend = OpenAIBackend(server.model, OpenAIOptions(base_urls=[server.url]))
    try:
        texts, choices = judge_texts(backend, structured=True)
        free, _ = judge_texts(backend, structured=False)
    finally:
        backend.close()
    assert all(t in choices for t in texts), texts
    assert any(t not in choices for t in free), free
