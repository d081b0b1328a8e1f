"""`selfinstruct stats` and `selfinstruct show` on a small synthetic run directory (no engine)."""
import base64
import json
import re

import pytest
from click.testing import CliRunner
from rouge_score import rouge_scorer

from selfinstruct.cli import main
from selfinstruct.io.shards import StageStore
from selfinstruct.report.compute import compute_report
from selfinstruct.report.diversity import verb_object
from selfinstruct.report.text import format_terminal

from .conftest import write_jsonl

SEEDS = [
    ("seed_task_0", "Write a short poem about the sea.", False),
    ("seed_task_1", "Give three tips for staying healthy.", False),
    ("seed_task_2", "Classify the sentiment of the review as positive or negative.", True),
    ("seed_task_3", "What is the capital of the given country?", False),
    ("seed_task_4", "Translate the sentence into French.", False),
]

GENERATED = [  # (id, instruction, is_classification)
    ("b00000-000-00", "Write a long poem about mountains in winter.", False),
    ("b00000-000-01", "Give me five tips for learning a new language quickly.", False),
    ("b00000-001-00", "Classify the animal as a mammal, bird or fish.", True),
    ("b00000-001-01", "What is the tallest building in the world?", False),
    ("b00000-002-00", "Summarize the article in two sentences.", False),
    ("b00001-000-00", "Explain how a rainbow forms.", False),
    ("b00001-000-01", "Is the number prime? Answer yes or no.", True),
    ("b00001-001-00", "Zebra quantum purple elephant.", False),
]


def _sampling():
    return {"temperature": 1.0, "top_p": 0.95, "max_tokens": 160, "stop": ["\n\n"]}


def _boot_row(i, text):
    return {"id": i, "instruction": text, "round": int(i[1:6]), "model": "embedded:test", "sampling": _sampling(),
            "prompt_seed_ids": ["seed_task_0", "seed_task_1"], "prompt_machine_ids": [], "request_seed": 7,
            "nearest": {"id": "seed_task_0", "score": 0.25}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """bootstrap (2 parts) -> classify -> instances -> filter -> export, with rejects of several reasons."""
    root = tmp_path_factory.mktemp("run")
    seeds = root / "seeds.jsonl"
    write_jsonl(seeds, [{"id": i, "name": i, "instruction": t, "is_classification": c,
                         "instances": [{"input": "", "output": "x"}]} for i, t, c in SEEDS])
    run = root / "r"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "selfinstruct": "0.1.0", "seed_tasks": str(seeds), "config_file": str(root / "c.yaml"),
        "config": {"name": "synthetic", "model": "embedded:test", "backend": "vllm", "seed": 1,
                   "seed_tasks": str(seeds), "stages": ["bootstrap", "classify", "instances", "filter", "export"],
                   "bootstrap": {"filters": {"rouge_threshold": 0.7}}}}))

    b = StageStore(run, "bootstrap", "h-boot")
    rows = [_boot_row(i, t) for i, t, _ in GENERATED]
    b.commit(rows[:5], [
        {"id": "b00000-003", "reason": "unparseable", "raw": "garbage text", "round": 0},
        dict(_boot_row("b00000-002-01", "Write a short poem about the sea!"), reason="rouge_similar"),
        dict(_boot_row("b00000-002-02", "Draw a picture of a cat."), reason="blocked_keyword"),
    ], counts={"requests": 4, "prompt_tokens": 400, "completion_tokens": 100, "reject:unparseable": 1,
               "reject:rouge_similar": 1, "reject:blocked_keyword": 1, "kept": 5})
    b.commit(rows[5:], [
        dict(_boot_row("b00001-001-01", "Draw a map of the town."), reason="blocked_keyword"),
        dict(_boot_row("b00001-001-02", "Hi."), reason="too_short"),
    ], counts={"requests": 4, "prompt_tokens": 410, "completion_tokens": 90, "reject:blocked_keyword": 1,
               "reject:too_short": 1, "kept": 3})
    b.finish({"reached": True})

    c = StageStore(run, "classify", "h-cls")
    crow = []
    for (i, t, cls), r in zip(GENERATED, rows):
        crow.append(dict(r, is_classification=cls, classify_raw=" Yes" if cls else " No", classify_note=""))
    crow[-1]["classify_note"] = "unparseable; defaulted to is_classification=false"
    c.commit(crow, [{"id": crow[-1]["id"], "instruction": crow[-1]["instruction"], "reason": "unparseable",
                     "raw": " Maybe", "error": None, "kept_as": "is_classification=false"}],
             counts={"requests": 8, "prompt_tokens": 800, "completion_tokens": 16, "classification": 2,
                     "not_classification": 6, "note:unparseable": 1, "kept": 8})
    c.finish()

    s = StageStore(run, "instances", "h-inst")
    irows, irej = [], []
    for r in crow:
        if r["id"] == "b00001-001-00":
            irej.append({"id": r["id"], "instruction": r["instruction"], "reason": "unparseable",
                         "detail": "no Input/Output pair found", "raw": "???"})
            continue
        insts = [{"input": "", "output": f"Answer to {r['id']}"}]
        if r["id"] == "b00000-000-00":
            insts.append({"input": "", "output": ""})
        if r["id"] == "b00000-001-01":
            insts = [{"input": "", "output": ""}]
        irows.append(dict(r, instances=insts, instances_raw="Output: ..."))
    s.commit(irows, irej, counts={"requests": 8, "prompt_tokens": 900, "completion_tokens": 300,
                                  "instances": 8, "reject:unparseable": 1, "kept": 7})
    s.finish()

    f = StageStore(run, "filter", "h-filt")
    frows, frej = [], []
    for r in irows:
        kept = [i for i in r["instances"] if i["output"]]
        for i in r["instances"]:
            if not i["output"]:
                frej.append({"id": r["id"], "instruction": r["instruction"], "input": "", "output": "",
                             "reason": "empty_output"})
        if not kept:
            frej.append({"id": r["id"], "instruction": r["instruction"], "reason": "no_instances_left"})
            continue
        frows.append({k: v for k, v in r.items() if k not in ("instances_raw", "classify_raw")} | {"instances": kept})
    f.commit(frows, frej, counts={"instances": 6, "instance:empty_output": 2, "reject:no_instances_left": 1,
                                  "kept": 6})
    f.finish()

    e = StageStore(run, "export", "h-exp")
    e.manifest["files"] = ["train.messages.jsonl"]
    (e.dir).mkdir(parents=True, exist_ok=True)
    write_jsonl(e.dir / "train.messages.jsonl", [{"id": r["id"], "messages": []} for r in frows])
    e.counts.update({"train_examples": 5, "eval_examples": 1, "train_instructions": 5, "eval_instructions": 1})
    e.finish()
    return run


def test_stage_numbers_exact(run_dir):
    report = compute_report(run_dir)
    rep = report.to_dict()
    st = {s["stage"]: s for s in rep["stages"]}
    assert [s["stage"] for s in rep["stages"]] == ["bootstrap", "classify", "instances", "filter", "export"]
    b = st["bootstrap"]
    assert (b["in"], b["out"], b["dropped"]) == (13, 8, 5)
    assert b["drops"]["record"] == {"unparseable": 1, "rouge_similar": 1, "blocked_keyword": 2, "too_short": 1}
    assert b["accept"] == pytest.approx(8 / 13)
    assert (b["requests"], b["prompt_tokens"], b["completion_tokens"]) == (8, 810, 190)
    c = st["classify"]
    assert (c["in"], c["out"], c["dropped"], c["accept"]) == (8, 8, 0, 1.0)
    assert c["drops"]["note"] == {"unparseable": 1}
    assert c["classification"] == {"yes": 2, "no": 6, "share": 0.25}
    i = st["instances"]
    assert (i["in"], i["out"], i["dropped"]) == (8, 7, 1) and i["drops"]["record"] == {"unparseable": 1}
    f = st["filter"]
    assert (f["in"], f["out"], f["dropped"]) == (7, 6, 1)
    assert f["drops"]["instance"] == {"empty_output": 2}
    assert f["instances"] == {"in": 8, "out": 6, "dropped": 2}
    assert f["accept"] == pytest.approx(6 / 7)
    e = st["export"]
    assert (e["in"], e["out"]) == (6, 6)
    assert rep["final_classification"] == {"yes": 2, "n": 6, "share": pytest.approx(2 / 6)}
    assert rep["length"]["generated"] == [len(t.split()) for _, t, _ in GENERATED]
    assert not any("warning" in s for s in rep["stages"])

    text = format_terminal(report)
    assert all(len(line) <= 100 for line in text.splitlines()), max(text.splitlines(), key=len)
    assert re.search(r"^bootstrap\s+complete\s+13\s+8\s+5\s+61\.5%\s+8\s+810\s+190$", text, re.M)
    assert re.search(r"^filter\s+instance\s+empty_output\s+2\s+25\.0%$", text, re.M)
    assert re.search(r"^bootstrap\s+record\s+blocked_keyword\s+2\s+15\.4%$", text, re.M)
    assert "2 of 8 = 25.0%" in text


def test_rouge_to_nearest_seed_matches_rouge_score(run_dir):
    rep = compute_report(run_dir).to_dict()
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    ref = [max(scorer.score(t, s)["rougeL"].fmeasure for _, s, _ in SEEDS) for _, t, _ in GENERATED]
    assert rep["rouge"]["scores"] == ref  # exact, not approximate
    assert ref[-1] == 0.0 and max(ref) > 0.4  # the unrelated one scores 0; the close ones do not
    top = rep["rouge"]["closest"][0]
    assert top["score"] == max(ref) and top["seed_id"] in {i for i, _, _ in SEEDS}
    assert rep["rouge"]["threshold"] == 0.7
    assert rep["rouge"]["above_threshold"] == sum(x > 0.7 for x in ref) == 0
    assert rep["rouge"]["above_0_5"] == sum(x > 0.5 for x in ref) >= 1


@pytest.mark.parametrize("text,expected", [
    ("Write a short poem about the sea.", ("verb_object", "write", "poem")),
    ("Give me three tips for staying healthy.", ("verb_object", "give", "tips")),
    ("Generate a list of ten animals that live in the desert.", ("verb_object", "generate", "list")),
    ("Given a paragraph, summarize its main argument.", ("verb_object", "summarize", "argument")),
    ("In no more than three sentences, describe how a vaccine works.", ("verb", "describe", None)),
    ("Please rewrite the following sentence in passive voice.", ("verb_object", "rewrite", "sentence")),
    ("Come up with six name ideas for a running club.", ("verb_object", "come", "ideas")),
    ("Pull out all the email addresses in this text.", ("verb_object", "pull", "addresses")),
    ("My friend failed her test. Write them an encouraging message.", ("verb_object", "write", "message")),
    ("Make it shorter.", ("verb", "make", None)),
    ("Write a short, funny dialogue between a customer and a barista.", ("verb_object", "write", "dialogue")),
    ("Given the tables students(id, name) and courses(id), write a query that lists them.",
     ("verb_object", "write", "query")),
    ("Explain to me a joke about pizza.", ("verb_object", "explain", "joke")),
    ("Keep going until the end.", ("verb", "keep", None)),
    ("Do you need a cleaning service?", ("question", None, None)),
    ("What is the capital of France?", ("question", None, None)),
    ("A train covers 270 km in 2 hours. What is its speed?", ("question", None, None)),
    ("The weather today is sunny.", ("other", None, None)),
])
def test_verb_object(text, expected):
    assert tuple(verb_object(text)) == expected


def test_diversity_counts(run_dir):
    dv = compute_report(run_dir).to_dict()["diversity"]
    # write/poem, give/tips, classify/animal, summarize/article, explain(-), answer(-) ; 2 questions
    assert dv["kinds"] == {"verb_object": 4, "verb": 2, "question": 1, "other": 1}
    assert dv["distinct_verbs"] == 6 and dv["distinct_pairs"] == 4
    assert {x["verb"] for x in dv["top"]} == {"write", "give", "classify", "summarize"}


def test_report_html_with_pngs(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sub" / "report.html"
    r = CliRunner().invoke(main, ["stats", str(run_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"report: {out}" in r.output and "Stages" in r.output
    html = out.read_text()
    pngs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(pngs) == 3  # length, ROUGE-L, verb/object
    assert all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    for needle in ("Drops per reason", "rouge_similar", "no_instances_left", "Method.", "Zebra quantum",
                   "Rejected by bootstrap", "Most similar to a seed"):
        assert needle in html
    # default location, no plots
    r = CliRunner().invoke(main, ["stats", str(run_dir), "--no-plots"])
    assert r.exit_code == 0, r.output
    assert "data:image/png" not in (run_dir / "report.html").read_text()


def test_show_paging_reason_json(run_dir):
    run = CliRunner()
    r = run.invoke(main, ["show", str(run_dir / "bootstrap"), "-n", "3"])
    assert r.exit_code == 0, r.output
    assert re.findall(r"^#(\d+)\s+(\S+)", r.output, re.M) == [("1", "b00000-000-00"), ("2", "b00000-000-01"),
                                                            ("3", "b00000-001-00")]
    assert "nearest=seed_task_0 (0.250)" in r.output and "records 1-3 of 8" in r.output
    assert "--offset 3" in r.output
    # an offset across the part boundary (part 0 holds 5 rows)
    r = run.invoke(main, ["show", str(run_dir / "bootstrap"), "--offset", "4", "-n", "2", "--json"])
    assert r.exit_code == 0
    ids = [json.loads(l)["id"] for l in r.stdout.splitlines()]
    assert ids == ["b00000-002-00", "b00001-000-00"]
    assert "records 5-6 of 8" in r.stderr
    # rejects, and a reason filter (which implies rejects)
    r = run.invoke(main, ["show", str(run_dir / "bootstrap"), "--rejects", "--json", "-n", "50"])
    assert len(r.stdout.splitlines()) == 5
    r = run.invoke(main, ["show", str(run_dir / "bootstrap"), "--reason", "blocked_keyword", "--json"])
    assert [json.loads(l)["id"] for l in r.stdout.splitlines()] == ["b00000-002-02", "b00001-001-01"]
    r = run.invoke(main, ["show", str(run_dir / "bootstrap"), "--reason", "blocked_keyword", "--offset", "1"])
    assert re.search(r"^#2\s+b00001-001-01", r.output, re.M)
    assert "reason=blocked_keyword" in r.output and "of 2" in r.output
    r = run.invoke(main, ["show", str(run_dir / "filter"), "--reason", "empty_output"])
    assert r.output.count("reason=empty_output") == 2 and "output: (empty)" in r.output
    # raw lines are byte-identical to the shard's
    r = run.invoke(main, ["show", str(run_dir / "filter"), "--json", "-n", "100"])
    assert r.stdout == (run_dir / "filter" / "part-00000.jsonl").read_text()
    # past the end
    r = run.invoke(main, ["show", str(run_dir / "classify"), "--offset", "100"])
    assert r.exit_code == 0 and "past the end" in r.output


def test_show_unknown_reason_lists_available(run_dir):
    r = CliRunner().invoke(main, ["show", str(run_dir / "bootstrap"), "--reason", "nope"])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1
    assert "unknown reason 'nope'" in r.output
    for reason in ("blocked_keyword (2)", "rouge_similar (1)", "too_short (1)", "unparseable (1)"):
        assert reason in r.output


@pytest.mark.parametrize("args,msg", [
    (["show", "{run}/nostage"], "no such directory"),
    (["show", "{run}"], "is a run directory, not a stage; pick one of: bootstrap, classify, instances, filter, export"),
    (["show", "{run}/run.json"], "not a directory"),
    (["show", "{run}/export"], "this stage writes no shards; its files: train.messages.jsonl"),
    (["stats", "{run}/missing"], "no such run directory"),
    (["stats", "{run}/filter"], "is a stage directory"),
    (["stats", "{run}/bootstrap/rejects"], "not a run directory"),
    (["stats", "{run}", "--seeds", "{run}/nope.jsonl"], "seed file not found"),
])
def test_bad_paths_exit_2_one_line(run_dir, args, msg):
    r = CliRunner().invoke(main, [a.format(run=run_dir) for a in args])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], r.output


@pytest.mark.parametrize("damage, named", [
    (lambda run: (run / "classify" / "part-00000.jsonl").unlink(), "classify/part-00000.jsonl: missing"),
    (lambda run: (run / "instances" / "rejects" / "part-00000.jsonl").write_text("{}\n"),
     "instances/rejects/part-00000.jsonl: its sha256 does not match"),
    (lambda run: (run / "export" / "train.messages.jsonl").unlink(), "export/train.messages.jsonl: missing"),
])
def test_stats_of_a_run_with_a_missing_or_damaged_part_is_an_error(run_dir, tmp_path, damage, named):
    """The parts the report does not read (a middle stage's) are checked as `verify` checks them: the report
    would count rows that are not there. One line, exit 2, no report written."""
    import shutil

    run = shutil.copytree(run_dir, tmp_path / "r", ignore=shutil.ignore_patterns("report*"))
    damage(run)
    r = CliRunner().invoke(main, ["stats", str(run), "--no-plots"])
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: {run}/{named}") and "selfinstruct verify" in r.output
    assert r.output.count("\n") == 1 and not (run / "report.html").exists()


def test_corrupt_shard_and_missing_seeds(tmp_path):
    b = StageStore(tmp_path, "bootstrap", "h")
    b.commit([_boot_row("b00000-000-00", "Write a poem about rain.")], [])
    b.finish()
    r = CliRunner().invoke(main, ["stats", str(tmp_path), "--no-plots"])  # no run.json: no seeds, still works
    assert r.exit_code == 0, r.output
    assert "seed file not found" in r.output
    assert re.search(r"^bootstrap\s+complete\s+1\s+1\s+0\s+100\.0%", r.output, re.M)
    (tmp_path / "bootstrap" / "part-00000.jsonl").write_text('{"id": "x", "instruction": \n')
    r = CliRunner().invoke(main, ["stats", str(tmp_path), "--no-plots"])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {tmp_path / 'bootstrap' / 'part-00000.jsonl'}:1: invalid JSON: Expecting value")
    r = CliRunner().invoke(main, ["show", str(tmp_path / "bootstrap")])
    assert r.exit_code == 2 and "part-00000.jsonl:1: invalid JSON" in r.output
