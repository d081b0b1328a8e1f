"""FLAN-style templates over a labelled dataset: a CSV with a text and a label column becomes records of
every template kind (zero-shot, options, few-shot, inverted) whose answers match their rows; few-shot
exemplars come from the train rows only; a malformed row is a reject naming file:line and field; a
user's Jinja2 template runs sandboxed; the other task types render; resume is identical; the real
labelled dataset of the worked example (standard-library docstrings by Library Reference chapter)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.io.errors import UserError

from .conftest import run_files, stage_rows

FIX = Path(__file__).parent / "fixtures" / "human"
REVIEWS = FIX / "reviews.csv"


def config(tmp_path: Path, path: Path = REVIEWS, extra: str = "", name: str = "t.yaml"):
    p = tmp_path / name
    p.write_text(f"stages: [templates, export]\ntemplates:\n  path: {path}\n  task: {{name: sentiment}}\n"
                 f"  eval_fraction: 0.2\n  batch_size: 4\n  license: CC0-1.0\n{extra}"
                 "export: {formats: [messages, alpaca]}\n")
    return load_config(p)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tpl")
    run_pipeline(config(d), d / "run", quiet=True)
    return d / "run"


def csv_rows() -> list[dict]:
    with REVIEWS.open() as f:
        return list(csv.DictReader(f))


def test_every_kind_is_made_and_every_answer_matches_its_row(run):
    rows, kept = csv_rows(), stage_rows(run, "templates")
    assert {r["template"]["kind"] for r in kept} == {"zero_shot", "options", "few_shot", "inverted"}
    for r in kept:
        src = rows[r["template"]["row"]]
        out = r["instances"][0]["output"]
        if r["template"]["kind"] == "inverted":  # the label asked for, the row's text the answer
            assert out == src["text"] and src["label"] in r["instruction"]
        else:
            assert out == src["label"] and src["text"] in r["instruction"] + r["instances"][0]["input"]
        if r["template"]["kind"] == "options":
            assert "negative" in r["instruction"] and "positive" in r["instruction"]


def test_malformed_rows_are_rejects_naming_file_line_and_field(run):
    rejects = {r["line"]: r["detail"] for r in stage_rows(run, "templates", rejects=True)}
    assert set(rejects) == {13, 14}  # the CSV's header is line 1
    assert rejects[13].endswith("reviews.csv:13: field 'text': missing or empty")
    assert rejects[14].endswith("reviews.csv:14: field 'label': missing or empty")


def test_few_shot_exemplars_come_from_train_rows_only_and_export_follows_the_split(run):
    kept = stage_rows(run, "templates")
    held = {r["template"]["row"] for r in kept if r["split"] == "eval"}
    rows = csv_rows()
    assert held and len(held) < len(kept)
    for r in kept:
        if r["template"]["kind"] == "few_shot":
            shown = [i for i, row in enumerate(rows) if row["text"] and f"Text: {row['text']}\n" in r["instruction"]]
            assert shown and not set(shown) & held and r["template"]["row"] not in shown
    eval_ids = {json.loads(x)["id"] for x in (run / "export" / "eval.messages.jsonl").read_text().splitlines()}
    assert eval_ids == {r["id"] for r in kept if r["split"] == "eval"}
    card = (run / "export" / "README.md").read_text()
    assert "`reviews.csv`" in card and "CC0-1.0" in card


def test_a_user_template_renders_sandboxed(tmp_path):
    extra = ("  builtin: false\n  kinds: [zero_shot]\n  templates:\n"
             "    - {kind: zero_shot, instruction: 'Is this review {{ options | join(\" or \") }}?', input: '{{ text }}'}\n"
             "    - {kind: zero_shot, instruction: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"}\n")
    run_pipeline(config(tmp_path, extra=extra), tmp_path / "run", quiet=True)
    kept = stage_rows(tmp_path / "run", "templates")
    assert kept and all(r["instruction"] == "Is this review negative or positive?" for r in kept)
    assert {r["reason"] for r in stage_rows(tmp_path / "run", "templates", rejects=True)} >= {"template_error"}


def test_a_bad_template_is_refused_when_the_config_loads(tmp_path):
    with pytest.raises(UserError, match=r"templates\[0\]"):
        config(tmp_path, extra="  templates:\n    - {kind: zero_shot, instruction: '{{ text '}\n")


@pytest.mark.parametrize("task, rows", [
    ("{type: nli, name: relation}", [{"premise": "A man plays a guitar.", "hypothesis": "A person makes music.",
                                      "label": 0}]),
    ("{type: qa}", [{"question": "What colour is the sky?", "context": "The sky is blue.", "label": "blue"}]),
    ("{type: translation, source_language: English, target_language: German}",
     [{"text": "Good morning", "label": "Guten Morgen"}]),
    ("{type: summarization, name: summary}", [{"text": "A long text about rivers.", "label": "Rivers."}]),
    ("{type: extraction, name: city}", [{"text": "She moved to Lyon in 2019.", "label": "Lyon"}]),
])
def test_the_other_task_types_render(tmp_path, task, rows):
    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows * 12))
    p = tmp_path / "t.yaml"
    labels = "\n    label_names: [entailment, neutral, contradiction]" if "nli" in task else ""
    p.write_text(f"stages: [templates, export]\ntemplates:\n  path: {f}\n  task: {task}\n" if not labels else
                 f"stages: [templates, export]\ntemplates:\n  path: {f}\n  task:\n    type: nli\n    name: relation"
                 f"{labels}\n")
    run_pipeline(load_config(p), tmp_path / "run", quiet=True)
    kept = stage_rows(tmp_path / "run", "templates")
    assert len(kept) == 12 and all(r["instruction"] for r in kept)
    if "nli" in task:
        assert {r["template"]["label"] for r in kept} == {"entailment"}  # integer labels index label_names


def test_resume_is_identical(tmp_path, run, monkeypatch):
    from selfinstruct.generate.stages.templates import Templates
    calls = {"n": 0}
    real = Templates.process

    def crashing(self, batch, completions):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, batch, completions)

    monkeypatch.setattr(Templates, "process", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config(tmp_path), tmp_path / "run", quiet=True)
    monkeypatch.setattr(Templates, "process", real)
    run_pipeline(config(tmp_path), tmp_path / "run", quiet=True)
    a, b = run_files(run), run_files(tmp_path / "run")
    for name in ("export/train.messages.jsonl", "export/eval.alpaca.json", "templates/manifest.json"):
        assert a[name] == b[name], name


def test_the_worked_example_dataset_is_real_and_labelled(tmp_path):
    from selfinstruct.corpora.stdlib_topics import CHAPTERS, write_topics
    n = write_topics(tmp_path / "topics.csv")
    with (tmp_path / "topics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) >= 200 and {r["label"] for r in rows} == set(CHAPTERS)
    assert all(len(r["text"].split()) >= 5 and r["source"] for r in rows)


def test_the_worked_example_makes_every_kind_with_labels_that_match_the_rows(tmp_path):
    """pipelines/templates.yaml as shipped, on the real labelled dataset (no model runs)."""
    from selfinstruct.corpora.stdlib_topics import write_topics

    from .conftest import ROOT
    write_topics(tmp_path / "topics.csv")
    with (tmp_path / "topics.csv").open() as f:
        rows = list(csv.DictReader(f))
    cfg = load_config(ROOT / "pipelines" / "templates.yaml", sets=[f"templates.path={tmp_path / 'topics.csv'}"])
    run_pipeline(cfg, tmp_path / "run", quiet=True)
    kept = stage_rows(tmp_path / "run", "templates")
    assert len(kept) == len(rows) and {r["template"]["kind"] for r in kept} == {"zero_shot", "options", "few_shot",
                                                                                "inverted"}
    for r in kept:
        src, out = rows[r["template"]["row"]], r["instances"][0]["output"]
        assert out == (src["text"] if r["template"]["kind"] == "inverted" else src["label"])
    assert {f.name for f in (tmp_path / "run" / "export").glob("train.*")} == {
        "train.messages.jsonl", "train.prompt_completion.jsonl", "train.alpaca.json", "train.sharegpt.jsonl",
        "train.oasst.jsonl"}
