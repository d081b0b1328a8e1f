"""Human instruction datasets in and out: Dolly-15k, OpenAssistant trees (nested and flat) and ShareGPT
read from small real-format fixtures (a Dolly row with context, an OASST tree with ranked siblings and a
deleted message, a ShareGPT conversation with a system turn), as training rows and as seed tasks (the
category kept), malformed rows named by file:line; export to ShareGPT and OpenAssistant formats that
read back as the same conversations; every assistant turn of a multi-turn conversation in the loss with
the embedded model's chat template, which has no generation markers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.io.errors import UserError
from selfinstruct.io.human import read_conversations
from selfinstruct.io.seeds import load_seed_tasks
from selfinstruct.train.data import load_examples

from .conftest import stage_rows

FIX = Path(__file__).parent / "fixtures" / "human"


def test_dolly_rows_keep_their_context_and_category():
    convs = read_conversations(FIX / "dolly.jsonl")
    assert [c.category for c in convs] == ["closed_qa", "classification", "open_qa"]
    user = convs[0].messages[0]["content"]
    assert user.startswith("When did Virgin Australia start operating?\n\nVirgin Australia, the trading name")
    assert convs[0].messages[1] == {"role": "assistant", "content": "Virgin Australia commenced services on "
                                    "31 August 2000 as Virgin Blue, with two aircraft on a single route."}


@pytest.mark.parametrize("name", ["oasst.trees.jsonl", "oasst.messages.jsonl"])
def test_openassistant_best_path_all_paths_and_deleted_messages(name):
    best = read_conversations(FIX / name)
    every = read_conversations(FIX / name, paths="all")
    texts = [m["content"] for c in every for m in c.messages]
    assert "[deleted spam]" not in texts and "buy cheap pills" not in texts
    if name.startswith("oasst.trees"):
        assert [m["content"] for m in best[0].messages] == [
            "How do I boil an egg?", "Put it in boiling water for 9 minutes, then cool it in cold water.",
            "And for a soft egg?", "About 6 minutes."]  # rank 0 at each turn, multi-turn kept
        assert len(every) == 2 and every[1].messages[-1]["content"] == "Microwave it."
    else:
        assert best[0].messages[-1]["content"] == "13."  # rank 0 beats rank 1
        assert sorted(c.messages[-1]["content"] for c in every) == ["11 is a prime number above 10.", "13."]


def test_sharegpt_keeps_the_system_turn_and_drops_an_unanswered_last_question():
    a, b = read_conversations(FIX / "sharegpt.json")
    assert [m["role"] for m in a.messages] == ["system", "user", "assistant", "user", "assistant"] and a.multi_turn
    assert [m["content"] for m in b.messages] == ["Give me a synonym for quick.", "Fast."]


def test_malformed_rows_name_file_line_and_field():
    with pytest.raises(UserError, match=r"dolly_bad\.jsonl:2: field 'response': missing"):
        read_conversations(FIX / "dolly_bad.jsonl")
    rejects = []
    assert len(read_conversations(FIX / "dolly_bad.jsonl", rejects=rejects)) == 1
    assert rejects == [(2, "response", "missing")]
    with pytest.raises(UserError, match=r"dolly_bad\.jsonl:2: field 'response'"):
        load_seed_tasks(FIX / "dolly_bad.jsonl")
    with pytest.raises(UserError, match=r"dolly_bad\.jsonl:2: field 'response'"):
        load_examples(FIX / "dolly_bad.jsonl")


def test_each_format_is_a_training_source():
    rows = {f: load_examples(FIX / f) for f in ("dolly.jsonl", "sharegpt.json", "oasst.trees.jsonl",
                                                "oasst.messages.jsonl")}
    assert rows["oasst.messages.jsonl"][0]["completion"][0]["content"] == "13."
    sg = rows["sharegpt.json"][0]
    assert [m["role"] for m in sg["prompt"]] == ["system", "user", "assistant", "user"]
    assert sg["completion"] == [{"role": "assistant", "content": "212 degrees Fahrenheit."}]
    assert len(rows["dolly.jsonl"]) == 3 and rows["oasst.trees.jsonl"][0]["completion"][0]["content"] == "About 6 minutes."


def test_seed_tasks_accept_dolly_directly_with_the_category_as_task_type(tmp_path):
    from selfinstruct.backends.fake import FakeBackend
    from selfinstruct.generate.config import load_config
    from selfinstruct.generate.pipeline import run_pipeline
    tasks = load_seed_tasks(FIX / "dolly.jsonl")
    assert [(t.category, t.is_classification) for t in tasks] == [
        ("closed_qa", False), ("classification", True), ("open_qa", False)]
    assert tasks[0].instances[0].input.startswith("Virgin Australia, the trading name")
    (tmp_path / "p.yaml").write_text(f"seed_tasks: {FIX / 'dolly.jsonl'}\nstages: [bootstrap, classify]\n"
                                     "bootstrap: {num_instructions: 6, num_seed_demos: 2, num_machine_demos: 1}\n"
                                     "classify: {num_demos: 2}\n")
    run_pipeline(load_config(tmp_path / "p.yaml"), tmp_path / "run", quiet=True, backend=FakeBackend())
    assert len(stage_rows(tmp_path / "run", "bootstrap")) >= 6


def test_export_to_sharegpt_and_openassistant_reads_back_as_the_same_conversations(tmp_path):
    from selfinstruct.backends.fake import FakeBackend
    from selfinstruct.generate.config import load_config
    from selfinstruct.generate.pipeline import run_pipeline

    from .conftest import PROJECT_SEEDS
    (tmp_path / "p.yaml").write_text(
        f"seed_tasks: {PROJECT_SEEDS}\nbootstrap: {{num_instructions: 10}}\n"
        "export: {eval_fraction: 0.2, system_prompt: 'Be brief.', formats: [messages, sharegpt, oasst]}\n")
    run_pipeline(load_config(tmp_path / "p.yaml"), tmp_path / "run", quiet=True, backend=FakeBackend())
    export = tmp_path / "run" / "export"
    for split in ("train", "eval"):
        want = [json.loads(x)["messages"] for x in (export / f"{split}.messages.jsonl").read_text().splitlines()]
        assert want
        assert [c.messages for c in read_conversations(export / f"{split}.sharegpt.jsonl")] == want
        back = read_conversations(export / f"{split}.oasst.jsonl")
        assert [c.messages for c in back] == [[m for m in w if m["role"] != "system"] for w in want]
    card = (export / "README.md").read_text()
    assert "config_name: sharegpt" in card and "config_name: oasst" in card


@pytest.mark.slow  # the embedded model's tokenizer (transformers)
def test_every_assistant_turn_is_in_the_loss_with_the_embedded_template():
    from transformers import AutoTokenizer

    from selfinstruct.models import prepare_embedded_model
    from selfinstruct.train.mixture import tokenize
    tok = AutoTokenizer.from_pretrained(str(prepare_embedded_model()))
    assert "{% generation %}" not in tok.chat_template  # no generation markers to lean on
    row = load_examples(FIX / "sharegpt.json")[0]
    out = tokenize(tok, row)
    spans, cur = [], []
    for t, m in zip(out["input_ids"], out["completion_mask"]):
        if m:
            cur.append(t)
        elif cur:
            spans.append(tok.decode(cur))
            cur = []
    spans += [tok.decode(cur)] if cur else []
    assert spans == ["100 degrees Celsius.<|im_end|>\n", "212 degrees Fahrenheit.<|im_end|>\n"]
    single = tokenize(tok, load_examples(FIX / "dolly.jsonl")[1])  # one turn: the completion only
    assert tok.decode([t for t, m in zip(single["input_ids"], single["completion_mask"]) if m]) == "Tope<|im_end|>\n"
