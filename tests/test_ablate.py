"""`selfinstruct ablate`: one held-out split shared by every selection and trained on by none, exactly N
examples per selection ranked as `select` ranks them, extra paired differences (judge - random, judge -
longest) in every suite, the decision rule's verdict; and one real smoke run (four tiny fine-tunes of
the embedded model, one evaluation) that resumes without training again."""
import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from selfinstruct.workflows.ablate.command import PLAN_FILE, RULE, verdicts
from selfinstruct.workflows.ablate.plan import HELD_OUT, make_plan, write_plan_data
from selfinstruct.backends.fake import FakeBackend
from selfinstruct.cli import main
from selfinstruct.evals.generation import Answer
from selfinstruct.evals.suites import Item, Options, PairwiseSuite, ReferenceSuite
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.stages.export import split_ids
from selfinstruct.generate.stages.select import answer_length
from selfinstruct.io.errors import UserError
from selfinstruct.io.formats import user_prompt
from selfinstruct.io.records import Record, Reject
from selfinstruct.io.shards import StageStore

from .conftest import judged_config, stage_rows, write_jsonl

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ablate")
    run = tmp / "run"
    cfg = judged_config(tmp, select="min_score: null, fraction: 0.5", instructions=60,
                        stages="[bootstrap, classify, instances, filter, judge, select, export]")
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    return run


def _prompt_of(ex):
    return ex["prompt"][-1]["content"]


def test_one_held_out_split_for_all_and_equal_sizes(judged_run):
    plan = make_plan(judged_run, ["all", "random", "longest", "judge"], fraction=0.3)
    pool = [Record.from_json(r) for r in stage_rows(judged_run, "judge")]
    assert plan.pool_stage == "judge" and plan.pool_records == len(pool)
    # the split is export's rule over the whole pool, before any selection
    assert set(plan.eval_ids) == split_ids([r.id for r in pool], 0.1, 42)
    held = {_prompt_of(e) for e in plan.eval_examples}
    train = [r for r in pool if r.id not in set(plan.eval_ids)]
    total = sum(len(r.instances) for r in train)
    assert plan.train_examples == total and plan.n == math.ceil(0.3 * total)
    for name, sel in plan.selections.items():
        assert not held & {_prompt_of(e) for e in sel.examples}, name  # nothing held out is trained on
        assert len(sel.examples) == (total if name == "all" else plan.n), name
        assert not {e["id"] for e in sel.examples} & set(plan.eval_ids)


def test_each_selection_is_its_ranking(judged_run):
    plan = make_plan(judged_run, ["random", "longest", "judge"], n=20)
    pool = {r["id"]: Record.from_json(r) for r in stage_rows(judged_run, "judge")}
    train = [i for i in pool if i not in set(plan.eval_ids)]
    for name, key in (("judge", lambda r: r.extra["judge_score"]), ("longest", answer_length)):
        chosen = list(dict.fromkeys(e["id"] for e in plan.selections[name].examples))
        rest = [i for i in train if i not in chosen]
        # every record but the last chosen (which may be cut) ranks at least as high as any left out
        assert min(key(pool[i]) for i in chosen) >= max(key(pool[i]) for i in rest), name
        assert plan.selections[name].records == len(chosen)
    # examples are the records' own instances, in the prompt-completion format
    e = plan.selections["judge"].examples[0]
    r = pool[e["id"]]
    assert _prompt_of(e) in {user_prompt(r.instruction, i.input) for i in r.instances}
    # random: seeded, reproducible; the judge ranks differently from it
    again = make_plan(judged_run, ["random"], n=20)
    other = make_plan(judged_run, ["random"], n=20, seed=7)
    assert again.selections["random"].digest == plan.selections["random"].digest
    assert other.selections["random"].digest != plan.selections["random"].digest
    assert plan.selections["judge"].digest != plan.selections["random"].digest


def test_written_files_and_decontaminated_records_stay_out(judged_run, tmp_path):
    plan = make_plan(judged_run, ["all", "judge"], n=10)
    dirs = write_plan_data(plan, tmp_path / "ab")
    held = (tmp_path / "ab" / HELD_OUT / "eval.prompt_completion.jsonl").read_text()
    for d in dirs.values():
        assert (d / "eval.prompt_completion.jsonl").read_text() == held
        assert len((d / "train.prompt_completion.jsonl").read_text().splitlines()) == len(
            plan.selections[d.name].examples)
    # records the run's decontaminate stage dropped (here after select, before export) are not in the pool
    ids = [r["id"] for r in stage_rows(judged_run, "judge") if r["id"] not in set(plan.eval_ids)]
    store = StageStore(judged_run, "decontaminate", "h")
    store.commit([], [Reject(ids[0], "decontaminated_ngram"), Reject(ids[1], "some_other_reason")])
    store.finish()
    try:
        again = make_plan(judged_run, ["all"], n=10)
    finally:
        shutil.rmtree(store.dir)
    assert again.pool_records == plan.pool_records - 1
    assert ids[0] not in {e["id"] for e in again.selections["all"].examples}
    # nor, in a run made before that stage, those its export listed in decontaminated.jsonl
    flagged = judged_run / "export" / "decontaminated.jsonl"
    write_jsonl(flagged, [{"id": ids[0], "reason": "ngram"}])
    try:
        again = make_plan(judged_run, ["all"], n=10)
    finally:
        flagged.unlink()
    assert again.pool_records == plan.pool_records - 1
    assert ids[0] not in {e["id"] for e in again.selections["all"].examples}


def test_bad_requests_are_one_line_errors(judged_run, tmp_path):
    with pytest.raises(UserError, match="train pool has"):
        make_plan(judged_run, ["random"], n=10 ** 6)
    with pytest.raises(UserError, match="unknown selector"):
        make_plan(judged_run, ["best"])
    unjudged = tmp_path / "plain"
    cfg = judged_config(tmp_path, stages="[bootstrap, classify, instances, filter, export]", instructions=12)
    run_pipeline(cfg, unjudged, quiet=True, backend=FakeBackend())
    with pytest.raises(UserError, match="no judge_score"):
        make_plan(unjudged, ["judge", "random"])
    assert make_plan(unjudged, ["random", "longest"], n=3).pool_stage == "filter"
    res = CliRunner().invoke(main, ["ablate", "-d", str(unjudged), "-o", str(tmp_path / "o"), "--dry-run"])
    assert res.exit_code == 2 and "no judge_score" in res.output and "Traceback" not in res.output


def test_dry_run_prints_rule_and_selections(judged_run):
    res = CliRunner().invoke(main, ["ablate", "-d", str(judged_run), "-o", "unused", "--dry-run", "--examples", "12"])
    assert res.exit_code == 0, res.output
    assert RULE in res.output and "judge: 12 examples" in res.output and "all:" in res.output


def _answers(texts):
    return [Answer(t, False) for t in texts]


def test_extra_differences_are_paired_and_signed():
    refs = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"]
    items = [Item(str(i), [{"role": "user", "content": "q"}], {"reference": r, "row": {}}) for i, r in enumerate(refs)]
    answers = {"base": _answers(["x"] * 4), "random": _answers(["x", "gamma", "x", "x"]),
               "judge": _answers(refs)}
    opts = Options(resamples=200, compare=(("judge", "random"),))
    res = ReferenceSuite().score(items, answers, opts)
    assert list(res.differences) == ["random - base", "judge - base", "judge - random"]
    d = res.differences["judge - random"]["rouge_l"]
    expect = res.metrics["judge"]["rouge_l"].estimate - res.metrics["random"]["rouge_l"].estimate
    assert d.estimate == pytest.approx(expect) and d.estimate > 0 and d.low <= d.estimate <= d.high
    # pairwise: each model is judged against the base; judge - random compares those win scores per prompt
    items = [Item(str(i), [{"role": "user", "content": "q"}], {"instruction": "q"}) for i in range(4)]
    answers = {"base": _answers(["b"] * 4), "random": _answers(["r"] * 4), "judge": _answers(["j"] * 4)}
    # verdicts for (A=base, B=other) then (A=other, B=base): random always loses, judge always wins
    lose, win = ["A", "B"], ["B", "A"]
    res = PairwiseSuite().score(items, answers, opts, verdicts=lose * 4 + win * 4)
    assert res.differences["random vs base"]["win_rate"].estimate == 0.0
    assert res.differences["judge vs base"]["win_rate"].estimate == 1.0
    assert res.differences["judge - random"]["win_rate"].estimate == 1.0


def test_verdict_follows_the_rule():
    def iv(low, est, high):
        return {"estimate": est, "low": low, "high": high}
    summary = {"suites": {
        "ifbench": {"differences": {"judge - random": {"prompt_strict": iv(0.01, 0.05, 0.09)},
                                    "judge - longest": {"prompt_strict": iv(0.02, 0.04, 0.08)}}},
        "pairwise": {"differences": {"judge - random": {"win_rate": iv(0.01, 0.05, 0.09)},
                                     "judge - longest": {"win_rate": iv(-0.02, 0.04, 0.08)}}}}}
    got = verdicts(summary, (("judge", "random"), ("judge", "longest")))
    assert got["ifbench"].startswith("judge wins") and got["pairwise"].startswith("judge does not win")
    assert "judge - longest +4.0 [-2.0, +8.0]" in got["pairwise"]
    assert verdicts(summary, (("judge", "random"),))["ifbench"].startswith("no verdict")


@pytest.mark.slow  # four CPU fine-tunes, evaluated with transformers (--engine transformers): no vLLM
@pytest.mark.timeout(1500)
def test_ablate_smoke_on_the_embedded_model(tmp_path):
    """Four real fine-tunes (2 steps), one evaluation of the base and all four on IFBench and pairwise
    (2 prompts each, short answers), the table and chart; a re-run trains nothing; a new plan is refused."""
    run, out = tmp_path / "run", tmp_path / "ab"
    cfg = judged_config(tmp_path, select="min_score: null, fraction: 0.5", instructions=20,
                        stages="[bootstrap, classify, instances, filter, judge, select, export]")
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    args = ["ablate", "-d", str(run), "-o", str(out), "--examples", "8", "--max-steps", "2",
            "--batch-size", "2", "--max-length", "256", "--suite", "ifbench", "--suite", "pairwise",
            "--limit", "2", "--max-new-tokens", "12", "--engine", "transformers", "--resamples", "100", "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert RULE in res.output and "ifbench: judge" in res.output and "pairwise: judge" in res.output
    result = json.loads((out / "ablation.json").read_text())
    assert set(result["plan"]["selections"]) == {"all", "random", "longest", "judge"}
    for name in result["plan"]["selections"]:
        summary = json.loads((out / name / "model" / "selfinstruct-finetune.json").read_text())
        assert summary["steps"] == 2 and summary["eval_examples"] == result["plan"]["eval_examples"]
    ev = result["evaluation"]
    assert list(ev["models"]) == ["base", "all", "random", "longest", "judge"]
    diffs = ev["suites"]["ifbench"]["differences"]
    assert {"judge - random", "judge - longest", "all - base"} <= set(diffs)
    assert (out / "evaluation.report.html").is_file() and np.isfinite(diffs["judge - random"]["prompt_strict"]["low"])
    # resumed: the finished fine-tunes are reused
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and res.output.count("fine-tuned before with this plan, reused") == 4, res.output
    # another plan over the same folder is refused, one line, nothing touched
    before = (out / PLAN_FILE).read_text()
    res = CliRunner().invoke(main, [*args[:6], "9", *args[7:]])
    assert res.exit_code == 2 and "another plan" in res.output and (out / PLAN_FILE).read_text() == before


@pytest.mark.slow  # a subprocess
def test_quiet_redirections_nest_and_notes_still_reach_the_terminal(tmp_path):
    """ablate -q sends library output to OUT/ablate.log and evaluate -q (inside it) to its own log: our
    notes reach the terminal at every depth, library output never does."""
    import subprocess
    import sys
    script = f"""
import os, sys
from pathlib import Path
from selfinstruct.io.console import library_output_to, terminal
d = Path({str(tmp_path)!r})
with library_output_to(d / "outer.log"):
    os.write(2, b"lib-outer\\n")
    with library_output_to(d / "inner.log"):
        os.write(1, b"lib-inner\\n")
        print("note-inner", file=terminal(), flush=True)
    print("note-outer", file=terminal(), flush=True)
print("note-after", file=terminal(), flush=True)
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr.split() == ["note-inner", "note-outer", "note-after"] and res.stdout == ""
    assert (tmp_path / "outer.log").read_text() == "lib-outer\n"
    assert (tmp_path / "inner.log").read_text() == "lib-inner\n"


def test_the_plan_record_does_not_depend_on_how_paths_are_spelled(judged_run, tmp_path, monkeypatch):
    """A re-run with the same run and settings, named by other paths, reuses the fine-tunes."""
    import dataclasses

    from selfinstruct.workflows.ablate.command import plan_record
    from selfinstruct.train.config import FinetuneConfig

    cfg = FinetuneConfig(max_steps=3)
    a = plan_record(make_plan(judged_run, ["random"], n=5), dataclasses.replace(cfg, source="./f.yaml"))
    monkeypatch.chdir(judged_run.parent)
    b = plan_record(make_plan(judged_run.name, ["random"], n=5), dataclasses.replace(cfg, source="f.yaml"))
    assert a == b
    assert a != plan_record(make_plan(judged_run, ["random"], n=5), dataclasses.replace(cfg, max_steps=4))
