"""Reliability (issue 12), on the deterministic fake backend and small in-test fault servers: a failed
request is never final data, text from a model is made safe, one process per run directory, shards are
verified, secrets are redacted, input is bounded, and what is left of tracebacks is one line."""
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from selfinstruct.backends.base import Completion
from selfinstruct.backends.fake import FakeBackend
from selfinstruct.cli import main
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.io.errors import INCOMPLETE_EXIT, Incomplete, UserError
from selfinstruct.io.shards import read_stage_rows

from .conftest import PROJECT_SEEDS, ROOT
from .golden.record import data_files, golden_config

pytestmark = pytest.mark.timeout(180)


class Failing(FakeBackend):
    """Fails the requests whose prompt+seed hash falls in `share`, while `down` (a list, shared)."""

    def __init__(self, share=0.2, down=None, **kw):
        super().__init__(**kw)
        self.share, self.down = share, down if down is not None else [True]

    def poll(self):
        out = []
        for h, c in super().poll():
            key = int(hashlib.sha256(f"{h}".encode()).hexdigest(), 16) % 1000 / 1000
            if self.down[0] and key < self.share:
                c = Completion(text="", error="HTTP 503: down")
            out.append((h, c))
        return out


def write_cfg(tmp_path, text=""):
    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\n" + text)
    return p


# ------------------------------------------------------------------------- 1. failures are not final

@pytest.mark.parametrize("name", ["default", "alpaca"])
def test_failed_requests_stop_the_stage_and_a_rerun_gives_the_identical_dataset(tmp_path, name):
    run = tmp_path / "run"
    cfg = golden_config(name)
    with pytest.raises(Incomplete) as e:
        run_pipeline(cfg, run, quiet=True, backend=Failing(share=0.05, order_seed=3, cap=5))
    assert e.value.failed >= 1
    stage = cfg.stages[0] if not (run / cfg.stages[0] / "manifest.json").exists() or \
        not json.loads((run / cfg.stages[0] / "manifest.json").read_text())["complete"] else e.value.stage
    assert not json.loads((run / e.value.stage / "manifest.json").read_text())["complete"]
    for part in (run / e.value.stage / "rejects").glob("*.jsonl"):  # nothing failed was committed
        assert "request_failed" not in part.read_text()
    # a backend that fails again and again: each re-run commits more, never a failure
    for seed in range(4, 30):
        try:
            run_pipeline(cfg, run, quiet=True, backend=Failing(share=0.05, order_seed=seed, cap=5))
            break
        except Incomplete:
            continue
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend(order_seed=1, cap=5))
    assert data_files(run) == data_files(ROOT / "tests" / "golden" / f"run-{name}"), stage


def test_cli_exit_code_says_incomplete_and_nothing_failed_is_kept(tmp_path):
    cfg = write_cfg(tmp_path, "stages: [bootstrap, classify]\nbootstrap: {num_instructions: 10}\n"
                              "fake: {fail_share: 1.0}\n")
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg), "-o", str(run), "-q"])
    assert r.exit_code == INCOMPLETE_EXIT, r.output
    assert "request(s) failed" in r.output and "Re-run the same command to resume" in r.output
    assert len(r.output.strip().splitlines()) == 1
    m = json.loads((run / "bootstrap" / "manifest.json").read_text())
    assert not m["complete"] and not m["parts"]
    assert not (run / "classify").exists()


def test_a_circuit_breaker_stops_starting_requests_to_a_dead_server():
    from selfinstruct.backends.base import Request
    from selfinstruct.backends.fake import FakeOptions
    from selfinstruct.generate.scheduler import TooManyFailures, Window

    be = FakeBackend(options=FakeOptions(fail_share=1.0), cap=2)
    w = Window(be, limit=3, max_failures=5)
    w.add("a", [Request(f"p{i}", seed=i) for i in range(100)])
    handed = 0
    with pytest.raises(TooManyFailures, match=r"\d+ requests failed in a row"):
        while w.next() is not None:
            handed += 1
    assert len(be.started) <= 5 + 3  # not all 100: it stopped once 5 had failed in a row


def test_classify_never_turns_a_failed_request_into_a_label(tmp_path):
    run = tmp_path / "run"
    cfg = golden_config("default")
    cfg.stages = ["bootstrap", "classify"]
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    cfg.stages = ["bootstrap", "classify"]
    (run / "classify").rename(tmp_path / "classify-ok")
    with pytest.raises(Incomplete):
        run_pipeline(cfg, run, quiet=True, backend=Failing(share=0.3))
    for row in read_stage_rows(run / "classify"):
        assert "request_failed" not in row.get("classify_note", "")


# ---------------------------------------------------------------------------- 2. unsafe model text

def test_a_lone_surrogate_from_the_model_is_made_safe(tmp_path):
    class Surrogates(FakeBackend):
        def poll(self):
            return [(h, Completion(text=c.text.replace("river", "river\ud83d"), finish_reason=c.finish_reason))
                    for h, c in super().poll()]

    run = tmp_path / "run"
    cfg = golden_config("default")
    run_pipeline(cfg, run, quiet=True, backend=Surrogates())
    text = "".join(p.read_text("utf-8") for p in (run / "bootstrap").glob("part-*.jsonl"))
    assert "river\ufffd" in text


# ----------------------------------------------------------------------------------- 3. one writer

def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path):
    from selfinstruct.io.lock import RunLock

    run = tmp_path / "run"
    cfg = golden_config("default")
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    with RunLock(run):
        with pytest.raises(UserError, match=rf"{run} is in use by another selfinstruct process \(pid {os.getpid()}\)"):
            run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
        r = CliRunner().invoke(main, ["stats", str(run), "--no-plots"])  # readers are not locked out
        assert r.exit_code == 0, r.output
        assert CliRunner().invoke(main, ["show", str(run / "bootstrap"), "-n", "1"]).exit_code == 0
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())  # released


# ------------------------------------------------------------------------------- 4. verified shards

@pytest.fixture
def finished_run(tmp_path):
    run = tmp_path / "run"
    cfg = golden_config("default")
    cfg.stages = ["bootstrap"]
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    cfg.stages = ["bootstrap", "classify"]
    return run, cfg


def _cut_last_line(path):
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


@pytest.mark.parametrize("damage, message", [
    (lambda p: _cut_last_line(p / "part-00000.jsonl"), r"part-00000.jsonl: .*sha256"),
    (lambda p: (p / "part-00000.jsonl").write_bytes((p / "part-00000.jsonl").read_bytes()[:-7]), r"part-00000.jsonl"),
    (lambda p: (p / "part-00001.jsonl").unlink(), r"part-00001.jsonl: missing"),
    (lambda p: (p / "manifest.json").write_text("{\"parts\": [1,"), r"manifest.json: invalid JSON"),
    (lambda p: (p / "manifest.json").write_text("[]"), r"manifest.json: not a stage manifest"),
    (lambda p: (p / "manifest.json").unlink(), r"has part files but no manifest.json"),
])
def test_damaged_shards_are_found_not_trusted(finished_run, damage, message):
    run, cfg = finished_run
    damage(run / "bootstrap")
    with pytest.raises(UserError, match=message) as e:
        run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    assert "\n" not in str(e.value) and "--force" in str(e.value)
    assert not (run / "classify").exists()
    r = CliRunner().invoke(main, ["verify", str(run)])
    assert r.exit_code == 2 and "bootstrap" in r.output


def test_verify_a_good_run(finished_run):
    run, _ = finished_run
    r = CliRunner().invoke(main, ["verify", str(run)])
    assert r.exit_code == 0 and "ok" in r.output


# ------------------------------------------------------------------------------------- 6. secrets

def test_api_key_and_url_credentials_are_redacted(tmp_path, monkeypatch):
    from .fault_server import FaultServer, Reply

    srv = FaultServer(lambda req: Reply(401, {"error": f"bad key {req.headers.get('Authorization')}"})).__enter__()
    secret = "sk-very-secret-123456"
    monkeypatch.setenv("SI_TEST_KEY", secret)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: openai\nstages: [bootstrap]\n"
                   f"openai: {{api_key_env: SI_TEST_KEY, max_retries: 0, base_urls: "
                   f"['{srv.url.replace('://', f'://user:pw-{secret}@')}']}}\n"
                   "bootstrap: {num_instructions: 3}\n")
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg), "-o", str(run), "-q"])
    srv.__exit__()
    assert srv.count and all(req.headers.get("Authorization") for req in srv.requests)  # credentials were sent
    assert r.exit_code == INCOMPLETE_EXIT, r.output
    import base64
    leaks = [secret, base64.b64encode(f"user:pw-{secret}".encode()).decode()]
    assert not any(x in r.output for x in leaks) and "***" in r.output
    for f in run.rglob("*"):
        if f.is_file():
            assert not any(x in f.read_text(errors="replace") for x in leaks), f


@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_credentials_in_a_url_flag_are_refused(tmp_path, command):
    """A URL flag is seen in the process list and the shell's history: user:password@ there is refused, one
    line that names the API key's variable (the configured one), the password not repeated, nothing run."""
    cfg = write_cfg(tmp_path, "backend: openai\nopenai: {api_key_env: SI_TEST_KEY, max_retries: 0}\n"
                              "stages: [bootstrap]\nbootstrap: {num_instructions: 3}\n")
    url, run = "http://user:pw-s3cret@127.0.0.1:9/v1", tmp_path / "run"
    args = {"generate": ["generate", "-c", str(cfg), "-o", str(run), "--base-url", url, "-q"],
            "evaluate": ["evaluate", "--tuned", str(tmp_path / "model"), "--suite", "pairwise", "--judge-url", url,
                         "-o", str(run / "e.jsonl"), "-q"]}[command]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    flag, key = ("--base-url", "SI_TEST_KEY") if command == "generate" else ("--judge-url", "OPENAI_API_KEY")
    assert r.output.startswith(f"error: {flag}: credentials in the URL") and r.output.count("\n") == 1
    assert key in r.output and "s3cret" not in r.output and not run.exists()


def test_basic_tokens_and_url_passwords_are_redacted_in_any_spelling():
    import base64

    from selfinstruct.io.secrets import redact

    token = base64.b64encode(b"user:pw-s3cret").decode()
    for echoed in (f"Authorization: Basic {token}", f"authorization: basic {token}",
                   f"{{'AUTHORIZATION': 'BASIC {token}'}}", "http://user:pw@s3cret@127.0.0.1:9/v1/completions"):
        assert token not in redact(echoed) and "s3cret" not in redact(echoed) and "***" in redact(echoed), echoed
    # "basic" as a word (a prompt in run.json) is not a token
    assert redact("Give a basic answer, basically.") == "Give a basic answer, basically."


# ------------------------------------------------------------------------------- 7. bounded input

@pytest.mark.parametrize("text", [
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b]\n"
    "d: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
    "a: &a [*a]\n",
])
def test_yaml_aliases_are_refused(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    t = time.time()
    with pytest.raises(UserError, match="aliases"):
        load_config(p)
    assert time.time() - t < 5


def test_special_files_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        cfg = write_cfg(tmp_path, "").read_text().replace(str(PROJECT_SEEDS), path)
        (tmp_path / "p.yaml").write_text(cfg)
        with pytest.raises(UserError, match="not a regular file"):
            run_pipeline(load_config(tmp_path / "p.yaml"), tmp_path / "run", quiet=True)
        r = CliRunner().invoke(main, ["dedup", path, "-o", str(tmp_path / "o.jsonl")])
        assert r.exit_code == 2 and "not a regular file" in r.output
        with pytest.raises(UserError, match="not a regular file"):
            load_config(path)


def test_over_long_lines_are_refused(tmp_path):
    p = tmp_path / "seeds.jsonl"
    p.write_text(json.dumps({"instruction": "x" * (17 << 20)}) + "\n")
    r = CliRunner().invoke(main, ["dedup", str(p), "-o", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and f"{p}:1: line longer than" in r.output


# ------------------------------------------------------------------------ 8. the last tracebacks

def test_remaining_tracebacks_are_one_line(tmp_path):
    cli = CliRunner()
    # run.json that is a directory
    run = tmp_path / "run"
    (run / "run.json").mkdir(parents=True)
    r = cli.invoke(main, ["generate", "-c", str(write_cfg(tmp_path, "stages: [bootstrap]\n")), "-o", str(run)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "run.json" in r.output
    # dedup -o DIR
    seeds = tmp_path / "s.jsonl"
    seeds.write_text('{"instruction": "a b c"}\n')
    r = cli.invoke(main, ["dedup", str(seeds), "-o", str(tmp_path), "-q"])
    assert r.exit_code == 2 and r.output.strip() == f"error: {tmp_path}: is a directory, expected a file"
    # stats on a `[]` manifest
    (tmp_path / "r2" / "bootstrap").mkdir(parents=True)
    (tmp_path / "r2" / "bootstrap" / "manifest.json").write_text("[]")
    r = cli.invoke(main, ["stats", str(tmp_path / "r2"), "--no-plots"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1


def test_a_refused_rerun_leaves_run_json_alone(tmp_path):
    run = tmp_path / "run"
    cfg = golden_config("default")
    cfg.stages = ["bootstrap"]
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    before = (run / "run.json").read_bytes()
    cfg.seed += 1
    with pytest.raises(UserError, match="different configuration"):
        run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    assert (run / "run.json").read_bytes() == before


def test_duplicate_seed_ids_name_their_line(tmp_path):
    from selfinstruct.io.seeds import load_seed_tasks
    p = tmp_path / "s.jsonl"
    p.write_text('{"id": "a", "instruction": "x y z", "instances": []}\n{"id": "b", "instruction": "p q r", '
                 '"instances": []}\n{"id": "a", "instruction": "u v w", "instances": []}\n')
    with pytest.raises(UserError, match=rf"{p}:3: field 'id': duplicate id 'a' \(first on line 1\)"):
        load_seed_tasks(p)


def test_output_files_follow_the_umask(tmp_path):
    run = tmp_path / "run"
    cfg = golden_config("default")
    cfg.stages = ["bootstrap"]
    old = os.umask(0o022)
    try:
        run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    finally:
        os.umask(old)
    for f in [run / "run.json", *(run / "bootstrap").glob("part-*.jsonl")]:
        assert f.stat().st_mode & 0o777 == 0o644, f


def test_disk_full_during_a_commit_is_one_line_and_resumes(tmp_path, monkeypatch):
    from selfinstruct.io import jsonl

    run = tmp_path / "run"
    cfg_path = write_cfg(tmp_path, "stages: [bootstrap]\nbootstrap: {num_instructions: 20, requests_per_round: 4}\n")
    real, calls = jsonl.atomic_write_bytes, []

    def full(path, data):
        calls.append(path)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(jsonl, "atomic_write_bytes", full)
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg_path), "-o", str(run), "-q"])
    assert r.exit_code == 2 and "No space left on device" in r.output and len(r.output.strip().splitlines()) == 1
    monkeypatch.setattr(jsonl, "atomic_write_bytes", real)
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg_path), "-o", str(run), "-q"])
    assert r.exit_code == 0, r.output
    other = tmp_path / "clean"
    assert CliRunner().invoke(main, ["generate", "-c", str(cfg_path), "-o", str(other), "-q"]).exit_code == 0
    assert list(read_stage_rows(run / "bootstrap")) == list(read_stage_rows(other / "bootstrap"))


@pytest.mark.slow  # a subprocess CLI
def test_sigterm_gets_the_same_clean_message_as_ctrl_c(tmp_path):
    cfg = write_cfg(tmp_path, "stages: [bootstrap]\nbootstrap: {num_instructions: 100000, requests_per_round: 1, "
                              "max_rounds: 100000}\n")
    p = subprocess.Popen([sys.executable, "-m", "selfinstruct.cli", "generate", "-c", str(cfg), "-o",
                          str(tmp_path / "run"), "-q"], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 60
    while not list((tmp_path / "run" / "bootstrap").glob("part-*.jsonl")) and time.time() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 143 and "interrupted; re-run the same command to resume" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- 5. the OpenAI client against faults

def _openai(url, **opts):
    from selfinstruct.backends.openai_server import OpenAIBackend, OpenAIOptions
    return OpenAIBackend("m", OpenAIOptions(base_urls=[url], **opts), served_model="m")


def test_timeout_is_a_wall_clock_deadline_per_attempt():
    from selfinstruct.backends.base import Request
    from .fault_server import FaultServer, Reply, completion

    with FaultServer(lambda req: Reply(body={"choices": [completion("x" * 200)]}, drip_s=0.25)) as srv:
        t = time.time()
        (out,) = _openai(srv.url, timeout_s=1.0, max_retries=1, backoff_s=0.01).generate([Request("hi")])
    assert out.error and "within timeout_s=1.0" in out.error
    assert time.time() - t < 6


def test_retry_after_is_honoured_and_choices_are_picked_by_index():
    from selfinstruct.backends.base import Request
    from .fault_server import FaultServer, Reply, completion

    def handle(req):
        if req.n == 0:
            return Reply(429, {"error": "slow down"}, headers={"Retry-After": "1.5"})
        return Reply(body={"choices": [completion("second", index=1), completion("first", index=0)]})

    with FaultServer(handle) as srv:
        (out,) = _openai(srv.url, backoff_s=0.01).generate([Request("hi")])
        waited = srv.requests[1].at - srv.requests[0].at
    assert out.text == "first" and not out.error
    assert waited >= 1.4


def test_null_text_and_oversized_answers_are_failed_requests():
    from selfinstruct.backends.base import Request
    from .fault_server import FaultServer, Reply, completion

    with FaultServer(lambda req: Reply(body={"choices": [completion(None)]})) as srv:
        (out,) = _openai(srv.url, max_retries=0).generate([Request("hi")])
    assert out.error and "no text" in out.error
    with FaultServer(lambda req: Reply(body={"choices": [completion("x" * 5000)]})) as srv:
        (out,) = _openai(srv.url, max_retries=3, max_response_bytes=2048).generate([Request("hi")])
    assert out.error and "larger than 2048 bytes" in out.error and srv.count == 1


def test_a_server_that_does_not_list_the_model_is_warned_about_once(capsys):
    from selfinstruct.backends.base import Request
    from selfinstruct.backends.openai_server import OpenAIBackend, OpenAIOptions
    from .fault_server import FaultServer, Reply, completion

    def handle(req):
        if req.path.endswith("/models"):
            return Reply(body={"data": [{"id": "other-model"}]})
        return Reply(body={"choices": [completion("ok")]})

    with FaultServer(handle) as srv:
        be = OpenAIBackend("my-model", OpenAIOptions(base_urls=[srv.url]))
        outs = be.generate([Request("a"), Request("b"), Request("c")])
        be.close()
    assert [o.text for o in outs] == ["ok"] * 3
    err = capsys.readouterr().err
    assert err.count("does not list the model 'my-model'") == 1
