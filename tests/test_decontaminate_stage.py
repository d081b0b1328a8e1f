"""The `decontaminate` stage on the fake backend: records that match a planted benchmark file are ordinary
rejects (reasons, the hit in their fields, counted in the manifest, `stats` and `show`), a resumed stage
writes the same shards, the card states the counts and sources (or that nothing was checked), the export
only writes what it is given, and an old config's `export.decontaminate` is refused in one line.
No IFBench needed: the benchmarks here are JSONL files (tests/test_decontaminate.py covers IFBench)."""
import json
import shutil
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from tqdm import tqdm

from selfinstruct.backends.fake import FakeBackend
from selfinstruct.cli import main
from selfinstruct.dedup import tokenize
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.stages import decontaminate as stage_module
from selfinstruct.io.errors import UserError
from selfinstruct.io.shards import verify_run
from selfinstruct.report.compute import compute_report
from selfinstruct.report.text import format_terminal
from selfinstruct.run.reader import Run, read_run_info, read_stage

from .conftest import PROJECT_SEEDS, ROOT, run_files, stage_rows, write_jsonl
from .golden.record import golden_config

STAGES = ["alpaca", "filter", "decontaminate", "export"]


def stage_ctx(run, *done, seed=1):
    """What the pipeline gives a stage, for one run outside it: the seed, silent progress, and the run so far
    (run.json, the stages named in `done`)."""
    return SimpleNamespace(cfg=SimpleNamespace(seed=seed), progress=lambda *a, **k: tqdm(disable=True),
                           run_so_far=lambda: Run(run, read_run_info(run), [read_stage(run / s) for s in done]))


def rows(run, path):
    return [json.loads(x) for x in (run / path).read_text().splitlines() if x.strip()]


@pytest.fixture
def clean(tmp_path):
    """The fake backend's alpaca run (no decontamination) and a benchmark file that holds two of its
    instructions: one verbatim (ROUGE-L), one short one inside a long prompt (contained: the 13-gram rule)."""
    run = tmp_path / "clean"
    run_pipeline(golden_config("alpaca"), run, quiet=True, backend=FakeBackend())
    filtered = rows(run, "filter/part-00000.jsonl")
    exact, inside = filtered[0], next(r for r in filtered[1:] if len(tokenize(r["instruction"])) < 13)
    bench = write_jsonl(tmp_path / "bench.jsonl", [
        {"prompt": "Unrelated: name the planets of the solar system in order."},
        {"prompt": exact["instruction"]},
        {"prompt": "A long benchmark prompt about many things. " + inside["instruction"] + " " + " ".join(
            f"word{i}" for i in range(60))}])
    return SimpleNamespace(run=run, bench=bench, exact=exact, inside=inside)


def decontaminated_config(bench, **stage):
    cfg = golden_config("alpaca")
    cfg.stages = list(STAGES)
    cfg.decontaminate.benchmarks = [str(bench)]
    for k, v in stage.items():
        setattr(cfg.decontaminate, k, v)
    return cfg


def test_matching_records_are_rejects_with_the_hit_in_their_fields(tmp_path, clean):
    run = tmp_path / "run"
    run_pipeline(decontaminated_config(clean.bench), run, quiet=True, backend=FakeBackend())
    for f in ("alpaca/part-00000.jsonl", "filter/part-00000.jsonl"):  # the stages before it: unchanged
        assert (run / f).read_bytes() == (clean.run / f).read_bytes()
    rejects = stage_rows(run, "decontaminate", rejects=True)
    assert [(r["id"], r["reason"]) for r in rejects] == [(clean.exact["id"], "decontaminated_rouge"),
                                                         (clean.inside["id"], "decontaminated_ngram")]
    exact, inside = rejects
    # the whole record, then why: the benchmark prompt it matched
    assert {k: exact[k] for k in clean.exact} == clean.exact
    assert (exact["benchmark"], exact["benchmark_index"], exact["score"]) == (str(clean.bench), 1, 1.0)
    assert exact["benchmark_prompt"] == exact["text"] == clean.exact["instruction"]
    assert "shared" not in exact and exact["detail"] == f"ROUGE-L F1 1.00 with {clean.bench} prompt 1"
    assert inside["benchmark_index"] == 2 and inside["score"] < 0.7
    assert inside["shared"] == " ".join(tokenize(clean.inside["instruction"]))
    assert inside["detail"].startswith(f"shares {inside['shared']!r} with {clean.bench} prompt 2")
    # the kept records are the input less those two, in order
    gone = {clean.exact["id"], clean.inside["id"]}
    assert stage_rows(run, "decontaminate") == [r for r in rows(clean.run, "filter/part-00000.jsonl")
                                                if r["id"] not in gone]
    # counted like any other drop, and what it checked against is in the manifest
    m = json.loads((run / "decontaminate" / "manifest.json").read_text())
    assert m["counts"] == {"reject:decontaminated_rouge": 1, "reject:decontaminated_ngram": 1, "kept": 38}
    (source,) = m["benchmarks"]
    assert (source["benchmark"], source["prompts"]) == (str(clean.bench), 3) and len(source["sha256"]) == 64
    # the export writes what it is given: the clean run's files less those records, nothing of its own
    for name in ("train.messages.jsonl", "eval.messages.jsonl"):
        want = [r for r in rows(clean.run, f"export/{name}") if r["id"] not in gone]
        assert rows(run, f"export/{name}") == want
    assert sorted(p.name for p in (run / "export").iterdir()) == sorted(
        p.name for p in (clean.run / "export").iterdir())
    assert not any(verify_run(run).values())


def test_stats_show_and_the_card_see_the_drops(tmp_path, clean):
    run = tmp_path / "run"
    run_pipeline(decontaminated_config(clean.bench), run, quiet=True, backend=FakeBackend())
    text = format_terminal(compute_report(run))
    assert "decontaminated_rouge" in text and "decontaminated_ngram" in text
    r = CliRunner().invoke(main, ["show", str(run / "decontaminate"), "--reason", "decontaminated_ngram"])
    assert r.exit_code == 0 and clean.inside["id"] in r.output and "detail: shares" in r.output, r.output
    card = (run / "export" / "README.md").read_text()
    sha = json.loads((run / "decontaminate" / "manifest.json").read_text())["benchmarks"][0]["sha256"]
    assert (f"Checked against `bench.jsonl` (3 prompts, sha256 `{sha}`): 1 records left out for a ROUGE-L F1 "
            "> 0.7 with a benchmark prompt, 1 for a shared 13-gram (the rejects of the `decontaminate` stage") in card
    assert "\n| decontaminate | complete | 40 | 38 | 2 |" in card
    assert "| decontaminate | record | decontaminated_rouge | 1 |" in card
    assert str(tmp_path) not in card  # the benchmark file is named, not its path
    # without the stage, the card says so
    assert "Not checked against benchmark prompts (the run has no `decontaminate` stage)." in (
        clean.run / "export" / "README.md").read_text()
    # the scan finds nothing left in the final records (the stage's output), and exits 0
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", str(clean.bench)])
    assert r.exit_code == 0 and f"{run}/decontaminate: 38 records" in r.output and "clean:" in r.output, r.output


def test_a_resumed_stage_writes_the_same_shards(tmp_path, clean, monkeypatch):
    whole = tmp_path / "whole"
    run_pipeline(decontaminated_config(clean.bench, batch_size=8), whole, quiet=True, backend=FakeBackend())
    assert len(json.loads((whole / "decontaminate" / "manifest.json").read_text())["parts"]) == 5

    process, calls = stage_module.Decontaminate.process, []

    def stop_at_the_third_batch(self, batch, completions):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return process(self, batch, completions)

    cut = tmp_path / "cut"
    monkeypatch.setattr(stage_module.Decontaminate, "process", stop_at_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(decontaminated_config(clean.bench, batch_size=8), cut, quiet=True, backend=FakeBackend())
    assert len(json.loads((cut / "decontaminate" / "manifest.json").read_text())["parts"]) == 2
    monkeypatch.setattr(stage_module.Decontaminate, "process", process)
    built = []
    load = stage_module.Decontaminator.load
    monkeypatch.setattr(stage_module.Decontaminator, "load", lambda specs: built.append(specs) or load(specs))
    run_pipeline(decontaminated_config(clean.bench, batch_size=8), cut, quiet=True, backend=FakeBackend())
    assert len(built) == 1  # the index: once per run of the stage, not per batch
    got, want = run_files(cut), run_files(whole)  # shards, rejects, manifests, the export and its card
    assert sorted(got) == sorted(want)
    for path in want:
        assert got[path] == want[path], path


def test_a_benchmark_file_changed_during_the_stage_is_refused(tmp_path, clean, monkeypatch):
    run = tmp_path / "run"
    process, calls = stage_module.Decontaminate.process, []

    def stop(self, batch, completions):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return process(self, batch, completions)

    monkeypatch.setattr(stage_module.Decontaminate, "process", stop)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(decontaminated_config(clean.bench, batch_size=8), run, quiet=True, backend=FakeBackend())
    monkeypatch.setattr(stage_module.Decontaminate, "process", process)
    with clean.bench.open("a") as f:
        f.write(json.dumps({"prompt": "One more benchmark prompt."}) + "\n")
    with pytest.raises(UserError, match=r"decontaminate: a benchmark file changed since this stage began "
                                        r"\(.*bench\.jsonl\); delete this folder"):
        run_pipeline(decontaminated_config(clean.bench, batch_size=8), run, quiet=True, backend=FakeBackend())
    shutil.rmtree(run / "decontaminate")
    run_pipeline(decontaminated_config(clean.bench, batch_size=8), run, quiet=True, backend=FakeBackend())
    assert json.loads((run / "decontaminate" / "manifest.json").read_text())["benchmarks"][0]["prompts"] == 4


# ------------------------------------------------------------------------------------------ the config

def write_config(tmp_path, text):
    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\nbootstrap: {{num_instructions: 8}}\n{text}")
    return p


def one_line_error(args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 2, r.output
    (line,) = r.output.strip().splitlines()
    return line


def test_an_old_config_with_export_decontaminate_is_one_line_naming_the_stage(tmp_path):
    p = write_config(tmp_path, "export:\n  eval_fraction: 0.2\n  decontaminate: [ifbench]\n")
    out = tmp_path / "run"
    line = one_line_error(["generate", "-c", p, "-o", out, "-q"])
    assert line.startswith(f"error: {p}:6: field 'export.decontaminate': moved to its own stage: add "
                           "`decontaminate` before `export` in `stages`, with `decontaminate: {benchmarks: [...]}`")
    assert not out.exists()
    p = write_config(tmp_path, "")
    line = one_line_error(["generate", "-c", p, "-o", out, "-q", "--set", "export.decontaminate=[ifbench]"])
    assert "field 'export.decontaminate': moved to its own stage" in line and "(given on the command line)" in line
    # set to nothing, as every run.json of an older version records it (`dpo --iterations` loads that again)
    cfg = load_config(write_config(tmp_path, "export: {decontaminate: [], eval_fraction: 0.2}\n"))
    assert cfg.export.eval_fraction == 0.2


def test_benchmarks_are_checked_when_the_config_is_loaded(tmp_path):
    with pytest.raises(UserError, match=r"field 'decontaminate\.benchmarks\[1\]': .*no\.jsonl: not a benchmark name"):
        load_config(ROOT / "pipelines" / "alpaca.yaml", {},
                    [f"decontaminate.benchmarks=[{write_jsonl(tmp_path / 'b.jsonl', [{'prompt': 'x'}])}, "
                     f"{tmp_path / 'no.jsonl'}]"])
    p = write_config(tmp_path, "stages: [bootstrap, classify, instances, filter, decontaminate, export]\n")
    line = one_line_error(["generate", "-c", p, "-o", tmp_path / "run", "-q"])
    assert line == ("error: decontaminate.benchmarks is empty: name what to check against, e.g. "
                    "`decontaminate: {benchmarks: [ifbench]}` ('ifbench' or JSONL files)")
    # it goes anywhere after the instructions exist (here before the judge: fewer judge calls)
    cfg = load_config(write_config(tmp_path, "stages: [bootstrap, decontaminate, classify, instances, filter, "
                                             "judge, select, export]\n"))
    assert cfg.stages[1] == "decontaminate"
