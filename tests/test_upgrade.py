"""A run written by an earlier release (tests/fixtures/release-0.1.0: recorded with 0.1.0 on the fake
backend, kept whole) still works after the code moved: `verify`, `stats`, `show` and `finetune` read it,
and resuming it continues every stage whose code is unchanged and refuses, with one line naming it, the
first stage whose code changed since (the judge's prompt: judge-v1 -> judge-v2, the fenced rubric)."""
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import main

from .conftest import ROOT, run_files

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0"


@pytest.fixture
def release(tmp_path, monkeypatch) -> Path:
    """A copy of the recorded run and its config; the working directory is the repository (the run names
    its seed file relative to it, as runs made from a checkout do)."""
    shutil.copytree(FIXTURE, tmp_path / "release")
    monkeypatch.chdir(ROOT)
    return tmp_path / "release"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_verify_stats_and_show_read_a_run_of_the_earlier_release(release):
    run = release / "run"
    r = invoke("verify", run)
    assert r.exit_code == 0 and r.output.count(": ok") == 7, r.output
    r = invoke("stats", run, "--no-plots")
    assert r.exit_code == 0, r.output
    assert "judge" in r.output and "select" in r.output and (run / "report.html").exists()
    r = invoke("show", run / "select", "-n", "1")
    assert r.exit_code == 0 and "judge=" in r.output, r.output


def test_resume_continues_unchanged_stages_and_refuses_the_changed_one_in_one_line(release):
    run, before = release / "run", run_files(release / "run")
    stages = "[bootstrap, classify, instances, filter]"
    r = invoke("generate", "-c", release / "release.yaml", "-o", run, "-q", "--set", f"stages={stages}")
    assert r.exit_code == 0, r.output  # complete with 0.1.0's shards: nothing redone
    assert run_files(run) == before

    r = invoke("generate", "-c", release / "release.yaml", "-o", run, "-q")
    assert r.exit_code == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: {run / 'judge'} was written with a different") and "--force" in line
    assert run_files(run) == before  # nothing discarded


@pytest.mark.slow  # trains
@pytest.mark.timeout(600)
def test_finetune_trains_on_the_export_of_the_earlier_release(release, tmp_path):
    from selfinstruct.models import prepare_embedded_model

    out = tmp_path / "model"
    r = invoke("finetune", "-d", release / "run", "-o", out, "--model", prepare_embedded_model(),
               "--max-steps", 1, "--batch-size", 2, "--max-length", 128, "--no-eval", "-q")
    assert r.exit_code == 0, r.output
    assert (out / "config.json").exists() and any(out.glob("*.safetensors"))
