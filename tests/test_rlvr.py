"""`selfinstruct rlvr` (workflows/rlvr.py): the experiment's mechanics, end to end on a verified run of the
fake backend and a tiny random model for every trainer (what it shows about instruction following is
for the real run in the README), plus its pieces: the plain and verified SFT data, the answer statistics,
the rule's verdicts."""
from __future__ import annotations

import dataclasses
import json

import pytest

from selfinstruct.backends.fake import FakeBackend
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.io.errors import UserError
from selfinstruct.train.config import DpoConfig, FinetuneConfig, GrpoConfig
from selfinstruct.workflows.rlvr import RULE, SFT_FILE, Settings, format_rlvr, run_rlvr, training_data, verdicts
from selfinstruct.workflows.verdicts import answer_stats

from .conftest import stage_rows
from .test_verify import UP_TO_CONSTRAIN, Answerer, config, constrained_rows
from .tiny_model import save_tiny_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("rlvr")
    run = d / "run"
    run_pipeline(config(d, UP_TO_CONSTRAIN), run, quiet=True, backend=FakeBackend(order_seed=1, cap=5))
    run_pipeline(config(d), run, quiet=True, backend=Answerer(constrained_rows(run), order_seed=2, cap=6))
    return run


def test_plain_sft_gets_the_first_sampled_answer_of_the_same_prompts(run, tmp_path):
    dirs = training_data(run, tmp_path)
    verified = [json.loads(x) for x in (dirs["verified"] / SFT_FILE).read_text().splitlines()]
    plain = [json.loads(x) for x in (dirs["plain"] / SFT_FILE).read_text().splitlines()]
    first = {r["id"]: r["verify"]["answers"][0] for r in stage_rows(run, "verify") if "verify" in r}
    chosen = {r["id"]: r["verify"]["answers"][r["verify"]["chosen"]] for r in stage_rows(run, "verify") if "verify" in r}
    assert verified and [r["id"] for r in plain] == [r["id"] for r in verified]
    assert all(p["prompt"] == v["prompt"] for p, v in zip(plain, verified))
    assert [r["completion"][0]["content"] for r in plain] == [first[r["id"]] for r in plain]
    assert [r["completion"][0]["content"] for r in verified] == [chosen[r["id"]] for r in verified]
    assert any(first[r["id"]] != chosen[r["id"]] for r in verified)  # some first answers failed a constraint
    with pytest.raises(UserError, match="verified.yaml"):
        training_data(tmp_path, tmp_path / "x")


def test_answer_statistics_and_verdicts():
    s = answer_stats(["", "one two three", " ".join(["a b c d"] * 5)])
    assert s["empty_share"] == pytest.approx(1 / 3) and s["repetitive_share"] == pytest.approx(1 / 3)
    assert s["mean_words"] == pytest.approx((0 + 3 + 20) / 3)
    iv = lambda e, lo, hi: {"estimate": e, "low": lo, "high": hi}  # noqa: E731
    summary = {"suites": {"ifbench": {"differences": {"verified - plain": {"prompt_strict": iv(0.1, 0.02, 0.18)},
                                                      "grpo - dpo": {"prompt_strict": iv(0.05, -0.03, 0.13)}}}}}
    v = verdicts(summary)["ifbench"]
    assert v["verified vs plain"].startswith("verified beats plain: shown (verified - plain +10.0 [+2.0, +18.0]")
    assert v["grpo vs dpo"].startswith("grpo beats dpo: not shown") and "tell from 0: 8.0 points" in v["grpo vs dpo"]


@pytest.mark.slow  # trains four tiny models and evaluates five
def test_the_experiment_end_to_end_on_a_tiny_model_and_a_rerun_reuses_the_models(run, tmp_path):
    tiny = str(save_tiny_model(tmp_path / "tiny", positions=4096))
    common = dict(model=tiny, batch_size=4, max_length=256, logging_steps=1, save_steps=100)
    settings = Settings(finetune=FinetuneConfig(**common, max_steps=2),
                        dpo=DpoConfig(**common, max_steps=1),
                        grpo=GrpoConfig(**{**common, "max_length": 1024}, max_steps=1, num_generations=2,
                                        max_completion_length=4))
    notes = []
    result = run_rlvr(run, tmp_path / "out", settings, limit=2, engine="transformers", max_new_tokens=4,
                      quiet=True, log=notes.append)
    assert notes[0] == RULE  # printed before anything runs
    assert set(result["verdicts"]) == {"ifbench", "constraints", "pairwise"}
    assert all(set(v) == {"verified vs plain", "grpo vs dpo"} for v in result["verdicts"].values())
    assert set(result["answers"]["ifbench"]) == {"base", "verified", "plain", "dpo", "grpo"}
    for m in ("verified", "plain", "dpo", "grpo"):
        assert (tmp_path / "out" / m / "config.json").is_file()
    text = format_rlvr(result)
    assert text.startswith(RULE) and "verdict:" in text and "repetitive" in text
    notes.clear()
    run_rlvr(run, tmp_path / "out", dataclasses.replace(settings), limit=2, engine="transformers", max_new_tokens=4,
             quiet=True, log=notes.append)
    assert sum("trained before, reused" in n for n in notes) == 4
