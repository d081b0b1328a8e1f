import itertools
import json

import pytest
from rouge_score import rouge_scorer

from selfinstruct.io.errors import UserError
from selfinstruct.io.seeds import load_seed_tasks

from .conftest import PROJECT_SEEDS, write_jsonl


def test_project_seed_tasks_meet_the_spec():
    tasks = load_seed_tasks(PROJECT_SEEDS)
    assert len(tasks) >= 175
    assert sum(t.is_classification for t in tasks) >= 20
    assert len({t.id for t in tasks}) == len(tasks)
    assert all(t.instances and all(i.output.strip() for i in t.instances) for t in tasks)
    raw = [json.loads(l) for l in PROJECT_SEEDS.read_text().splitlines()]
    assert all(set(r) == {"id", "name", "instruction", "instances", "is_classification"} for r in raw)
    assert len({r["name"] for r in raw}) == len(raw)
    for t in tasks:
        assert t.instruction[0].isascii() and t.instruction[0].isalnum(), t.instruction
    # diverse: some need an input, some do not
    with_input = sum(any(i.input.strip() for i in t.instances) for t in tasks)
    assert 0.3 * len(tasks) < with_input < 0.7 * len(tasks)


def test_no_seed_pair_above_rouge_threshold():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    tasks = load_seed_tasks(PROJECT_SEEDS)
    worst = max(scorer.score(a.instruction, b.instruction)["rougeL"].fmeasure
                for a, b in itertools.combinations(tasks, 2))
    assert worst <= 0.7


def test_reads_original_self_instruct_file(shared_seeds):
    tasks = load_seed_tasks(shared_seeds)
    assert len(tasks) == 175
    assert tasks[0].id == "seed_task_0" and tasks[0].instances
    assert sum(t.is_classification for t in tasks) > 20


def test_reads_alpaca_json_and_jsonl(tmp_path):
    rows = [{"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
            {"instruction": "Name a primary colour.", "input": "", "output": "Red"}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    write_jsonl(tmp_path / "a.jsonl", rows)
    for name in ("a.json", "a.jsonl"):
        tasks = load_seed_tasks(tmp_path / name)
        assert [t.instruction for t in tasks] == ["Add the numbers.", "Name a primary colour."]
        assert tasks[0].instances[0].input == "2 and 3" and tasks[1].instances[0].output == "Red"


@pytest.mark.parametrize("content, expect", [
    (b'{"instruction": "ok", "instances": []}\n{bad json\n', ":2: invalid JSON"),
    (b'{"instances": []}\n', ":1: field 'instruction': missing"),
    (b'{"instruction": 5, "instances": []}\n', ":1: field 'instruction': expected a string"),
    (b'{"instruction": "x", "instances": [{"input": "", "output": 3}]}\n', "field 'instances[0].output'"),
    (b'{"instruction": "x", "instances": [], "is_classification": "yes"}\n', "field 'is_classification'"),
    (b'\n\n', "empty"),
    (b'{"instruction": "caf\xe9"}\n', ":1: not valid UTF-8"),
    (b'{"instruction": "a", "instances": []}\n[1, 2]\n', ":2: expected a JSON object"),
    (b'[{"instruction": "a"}, 7]\n', "item 1: expected an object"),
])
def test_bad_seed_files_name_file_line_field(tmp_path, content, expect):
    p = tmp_path / "seeds.jsonl"
    p.write_bytes(content)
    with pytest.raises(UserError) as e:
        load_seed_tasks(p)
    msg = str(e.value)
    assert str(p) in msg and expect in msg and "\n" not in msg


def test_missing_seed_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_seed_tasks(tmp_path / "nope.jsonl")
