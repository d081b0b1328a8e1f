"""`selfinstruct dpo`: a real tiny DPO of the embedded SmolLM2-135M on CPU, on a planted, separable
preference: every chosen answer starts with a marker phrase, the rejected one (otherwise the same) does
not. TRL's reward accuracy is 0.0 and its loss ln 2 before training by construction, so the checks are
on what training changed: the held-out pairs' reward accuracy, and how often the model says the marker."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import main

MARKER = "Ahoy matey!"
TOPICS = ["rivers", "bread", "stars", "chess", "bees", "tea", "snow", "maps", "bridges", "owls", "clocks", "salt",
          "kites", "moss", "glass", "wolves", "ink", "tides", "caves", "violins", "honey", "comets", "ferns", "pearls"]


def _pair(i: int) -> dict:
    topic = TOPICS[i]
    answer = f"Here is one fact about {topic}: they are older than most people think."
    return {"id": f"p{i}", "prompt": [{"role": "user", "content": f"Tell me one short fact about {topic}."}],
            "chosen": [{"role": "assistant", "content": f"{MARKER} {answer}"}],
            "rejected": [{"role": "assistant", "content": answer}], "chosen_score": 1, "rejected_score": 0}


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def base_model() -> str:
    from selfinstruct.models import prepare_embedded_model
    return str(prepare_embedded_model())


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prefs") / "export"
    d.mkdir()
    _write(d / "train.preference.jsonl", [_pair(i) for i in range(16)])
    _write(d / "eval.preference.jsonl", [_pair(i) for i in range(16, 24)])  # held-out topics
    return d.parent


def _marker_rate(model_dir, prompts) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    hits = 0
    for p in prompts:
        ids = tok.apply_chat_template(p, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=8, do_sample=False)
        hits += "ahoy" in tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).lower()
    return hits / len(prompts)


@pytest.mark.slow  # DPO training
@pytest.mark.timeout(1500)  # ~2-4 min alone; the CPU is often shared
def test_tiny_dpo_learns_a_planted_preference_and_reloads(base_model, pairs_dir, tmp_path):
    out = tmp_path / "dpo"
    res = CliRunner().invoke(main, ["dpo", "-d", str(pairs_dir), "-o", str(out), "--model", base_model,
                                    "--max-steps", "8", "--batch-size", "4", "--lr", "2e-5", "--beta", "0.1",
                                    "--logging-steps", "1", "--max-length", "96", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "reward accuracy" in res.stdout and f"done: {out}" in res.stdout
    s = json.loads((out / "selfinstruct-dpo.json").read_text())
    assert s["kind"] == "full" and s["steps"] == 8 and (s["train_pairs"], s["eval_pairs"]) == (16, 8)
    # before training the policy is its reference: loss ln 2, accuracy 0 (ties), whatever the data
    assert s["eval_before"]["loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert s["eval_after"]["reward_accuracy"] > 0.5, s["eval_after"]  # held-out pairs, unseen topics
    assert s["eval_after"]["loss"] < s["eval_before"]["loss"], s
    assert not (out / "checkpoints").exists()

    prompts = [_pair(i)["prompt"] for i in range(16, 24)]
    before, after = _marker_rate(base_model, prompts), _marker_rate(out, prompts)  # reloads and generates
    assert after > before, (before, after)


@pytest.mark.timeout(120)
def test_bad_preference_data_is_one_line_error(tmp_path, base_model):
    bad = _write(tmp_path / "train.preference.jsonl", [_pair(0), {"prompt": [{"role": "user", "content": "x"}],
                                                                  "chosen": "not messages", "rejected": []}])
    res = CliRunner().invoke(main, ["dpo", "-d", str(bad), "-o", str(tmp_path / "o"), "--model", base_model])
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "train.preference.jsonl:2" in err and "chosen" in err, err
    assert not (tmp_path / "o").exists()  # nothing half-written

    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(main, ["dpo", "-d", str(empty), "-o", str(tmp_path / "o"), "--model", base_model])
    # a directory without pairs: names what is missing
    assert res.exit_code == 2 and "no train.preference.jsonl" in res.stderr, res.stderr

    # a LoRA adapter as the policy, DPO'd with --lora --no-merge: the new adapter would name the plain base
    # (the SFT adapter is merged in memory), so it is refused before anything loads
    adapter = tmp_path / "sft-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base_model}))
    res = CliRunner().invoke(main, ["dpo", "-d", str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(adapter),
                                    "--lora", "--no-merge"])
    assert res.exit_code == 2 and "lora.merge" in res.stderr and "is a LoRA adapter" in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # DPO training
@pytest.mark.timeout(1200)
def test_dpo_lora_adapter_checkpoint_resume_and_an_adapter_policy(tmp_path, base_model, pairs_dir):
    """What `dpo` shares with `finetune`: a LoRA adapter saved alone (--no-merge), checkpoints and
    --resume; and a LoRA adapter folder as the policy (merged into its base, saved as a full model)."""
    from selfinstruct.train.loading import load_causal_lm

    out = tmp_path / "dpo-adapter"
    args = ["dpo", "-d", str(pairs_dir), "-o", str(out), "--model", base_model, "--lora", "--no-merge",
            "--batch-size", "4", "--max-length", "64", "--no-eval", "--save-steps", "1", "-q"]
    res = CliRunner().invoke(main, args + ["--max-steps", "1", "--keep-checkpoints"])
    assert res.exit_code == 0, res.output
    assert (out / "checkpoints" / "checkpoint-1").is_dir() and (out / "adapter_config.json").is_file()
    assert not (out / "config.json").exists()
    res = CliRunner().invoke(main, args + ["--max-steps", "2"])  # no clobbering without --resume/--overwrite
    assert res.exit_code == 2 and "--resume" in res.stderr
    res = CliRunner().invoke(main, args + ["--max-steps", "2", "--resume"])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "selfinstruct-dpo.json").read_text())
    assert s["kind"] == "adapter" and s["steps"] == 2 and s["resumed_from"].endswith("checkpoint-1")
    assert hasattr(load_causal_lm(str(out)), "peft_config")  # loads on its base

    # that adapter as the policy of a full DPO: merged first, saved as a plain model folder
    full = tmp_path / "dpo-full"
    res = CliRunner().invoke(main, ["dpo", "-d", str(pairs_dir), "-o", str(full), "--model", str(out),
                                    "--batch-size", "4", "--max-length", "64", "--no-eval", "--max-steps", "1", "-q"])
    assert res.exit_code == 0, res.output
    assert (full / "config.json").is_file() and not (full / "adapter_config.json").exists()
    assert not hasattr(load_causal_lm(str(full)), "peft_config")


@pytest.mark.slow  # DPO training
@pytest.mark.timeout(1200)
def test_iterations_make_new_pairs_with_the_newest_model_and_resume(tmp_path, base_model):
    """--iterations 2: iteration 1 trains on DATA's pairs; iteration 2 makes new pairs with DATA's own
    preference pipeline answered by iteration 1's model, then trains that model; a re-run redoes nothing.
    (The pairs come from the deterministic fake backend; the two DPO runs are real, one step each.)"""
    from selfinstruct.generate.config import load_config
    from selfinstruct.generate.pipeline import run_pipeline

    from .conftest import PROJECT_SEEDS

    (tmp_path / "sft.yaml").write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\n"
                                       "bootstrap: {num_instructions: 16, requests_per_round: 4}\n")
    run_pipeline(load_config(tmp_path / "sft.yaml"), tmp_path / "sft", quiet=True)
    (tmp_path / "pref.yaml").write_text(
        f"backend: fake\nstages: [responses, judge, pairs, export]\n"
        f"responses: {{source: {tmp_path / 'sft'}, model: {base_model}, samples: 4, batch_size: 4}}\n"
        "pairs: {min_margin: 1.0, length_guard: false}\nexport: {eval_fraction: 0.25, formats: [preference]}\n")
    run_pipeline(load_config(tmp_path / "pref.yaml"), tmp_path / "pref", quiet=True)
    out = tmp_path / "dpo"
    args = ["dpo", "-d", str(tmp_path / "pref"), "-o", str(out), "--model", base_model, "--iterations", "2",
            "--max-steps", "1", "--batch-size", "4", "--max-length", "64", "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "iterations.json").read_text())
    assert [r["policy"] for r in rows] == [base_model, str(out / "iteration-1" / "model")]
    assert rows[0]["pairs"] == str(tmp_path / "pref") and rows[1]["pairs"] == str(out / "iteration-2" / "preference")
    second = json.loads((out / "iteration-2" / "preference" / "run.json").read_text())
    assert second["config"]["responses"]["model"] == str(out / "iteration-1" / "model")  # the newest policy
    assert second["config"]["judge"] == json.loads((tmp_path / "pref" / "run.json").read_text())["config"]["judge"]
    for i in (1, 2):
        s = json.loads((out / f"iteration-{i}" / "model" / "selfinstruct-dpo.json").read_text())
        assert s["steps"] == 1 and (out / f"iteration-{i}" / "model" / "config.json").is_file()
    stamp = (out / "iteration-2" / "model" / "selfinstruct-dpo.json").stat().st_mtime_ns
    res = CliRunner().invoke(main, args)  # resumed: nothing redone
    assert res.exit_code == 0 and res.output.count("trained before, reused") == 2, res.output
    assert (out / "iteration-2" / "model" / "selfinstruct-dpo.json").stat().st_mtime_ns == stamp
    res = CliRunner().invoke(main, args + ["--resume"])
    assert res.exit_code == 2 and "--iterations resumes by itself" in res.stderr
    res = CliRunner().invoke(main, [*args[:2], str(tmp_path / "sft" / "export"), *args[3:]])
    assert res.exit_code == 2 and "preference run directory" in res.stderr
