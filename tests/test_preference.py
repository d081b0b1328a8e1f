"""The preference chain on an instruction-tuning run: `responses` (K answers from the train split only,
seeded per record and sample), `judge`, `pairs` (ties, margins, the length guard) and the `preference`
export (TRL's conversational preference format, loaded by `datasets` and TRL's data utilities); resume in
the middle of `responses` gives the identical pairs; prompts with constraints from the constraint library
are ranked by its checkers (exact labels: the chosen answer passes every constraint). That the library's
types are disjoint from the evaluation suites' is tests/test_constraints_library.py's."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.backends.fake import FakeBackend, FakeOptions
from selfinstruct.cli import main
from selfinstruct.generate.config import load_config
from selfinstruct.generate.options import derive_seed
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.stages.pairs import PairsConfig, choose
from selfinstruct.io.errors import Incomplete, UserError

from .conftest import PROJECT_SEEDS, stage_rows

pytestmark = pytest.mark.timeout(300)
REASONS = {"tie", "small_margin", "length_imbalance", "identical_answers", "empty_chosen", "unverified"}


# the policy's answers: some follow the test's constraint types (no digits, no exclamation mark), some not
ANSWERS = ("All is well here.", "There are 3 cats here.", "Wow, it works!", "Look at 3 stars!")
TYPES = ["train:no_digits", "train:no_exclamation"]


class Policy(FakeBackend):
    """The fake model, answering every prompt of `responses` with one of ANSWERS (by its seed), so that
    some answers follow a constraint and some do not; the judge's prompts as the fake judge does."""

    def answer(self, r):
        import random

        from selfinstruct.backends.fake import judged_answer

        text = r.prompt[-1]["content"] if isinstance(r.prompt, list) else r.prompt
        if isinstance(r.prompt, list) and judged_answer(text) is None:
            return random.Random(r.seed).choice(ANSWERS)
        return super().answer(r)


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sft")
    (d / "p.yaml").write_text(f"seed_tasks: {PROJECT_SEEDS}\nbootstrap: {{num_instructions: 30, requests_per_round: 4}}\n"
                              "export: {eval_fraction: 0.2}\n")
    run_pipeline(load_config(d / "p.yaml"), d / "run", quiet=True, backend=FakeBackend())
    return d / "run"


def pref_config(tmp_path: Path, sft: Path, extra: str = "", name: str = "pref.yaml"):
    p = tmp_path / name
    p.write_text(f"stages: [responses, judge, pairs, export]\n"
                 f"responses: {{source: {sft}, samples: 4, constraints: 0.3, max_constraints: 2, batch_size: 3, "
                 f"constraint_types: {TYPES}}}\n"
                 f"judge: {{batch_size: 5}}\npairs: {{min_margin: 1.0}}\n"
                 f"export: {{eval_fraction: 0.25, formats: [preference]}}\n{extra}")
    return load_config(p)


def export_ids(sft: Path, split: str) -> set[str]:
    return {json.loads(x)["id"] for x in (sft / "export" / f"{split}.prompt_completion.jsonl").read_text().splitlines()}


@pytest.fixture(scope="module")
def pref_run(tmp_path_factory, sft_run):
    d = tmp_path_factory.mktemp("pref")
    backend = Policy()
    run_pipeline(pref_config(d, sft_run), d / "run", quiet=True, backend=backend)
    return d / "run", backend


def test_responses_answer_the_train_split_k_times_with_derived_seeds(pref_run, sft_run):
    run, backend = pref_run
    rows = stage_rows(run, "responses")
    train, held_out = export_ids(sft_run, "train"), export_ids(sft_run, "eval")
    assert held_out and {r["source"]["id"] for r in rows} == train  # every train instruction, no eval one
    assert all(len(r["instances"]) == 4 and r["prompt"][-1]["content"] == r["instruction"] for r in rows)
    seeds = {q.seed for q in backend.started}
    assert all(derive_seed(42, "responses", r["id"], k) in seeds for r in rows for k in range(4))
    constrained = [r for r in rows if "constraints" in r]
    assert constrained and len(constrained) < len(rows)
    for r in constrained:  # from the constraint library, the base instruction kept
        assert {c["id"] for c in r["constraints"]["items"]} <= set(TYPES)
        assert r["instruction"].startswith(r["constraints"]["base_instruction"].rstrip("."))
        assert r["instruction"].endswith(r["constraints"]["description"])


def test_pairs_are_best_against_worst_and_every_drop_has_its_reason(pref_run):
    from selfinstruct.constraints import Constraint, check_all

    run, _ = pref_run
    kept, dropped = stage_rows(run, "pairs"), stage_rows(run, "pairs", rejects=True)
    assert kept and dropped and {r["reason"] for r in dropped} <= REASONS
    for r in kept:
        p, outs = r["pair"], [i["output"] for i in r["instances"]]
        if "constraints" in r:
            cs = [Constraint.from_dict(c) for c in r["constraints"]["items"]]
            scores = [sum(check_all(o, cs)) for o in outs]
            assert p["ranked_by"] == "constraints" and max(scores) == len(cs)  # the chosen one passes all
        else:
            scores = [statistics.fmean(s) for s in r["judge_scores"]]
            assert p["ranked_by"] == "judge"
        assert (p["chosen_score"], p["rejected_score"]) == (max(scores), min(scores))
        assert scores[p["chosen"]] == max(scores) and scores[p["rejected"]] == min(scores)
        assert p["margin"] >= 1.0 and len(outs[p["chosen"]]) <= 1.5 * len(outs[p["rejected"]]) and outs[p["chosen"]]
    assert {r["pair"]["ranked_by"] for r in kept} == {"judge", "constraints"}
    judged = stage_rows(run, "judge")
    assert all(("judge_scores" in r) != ("constraints" in r) for r in judged)  # constrained answers: never judged
    counts = json.loads((run / "pairs" / "manifest.json").read_text())["counts"]
    for reason in {r["reason"] for r in dropped}:
        assert counts[f"reject:{reason}"] == sum(r["reason"] == reason for r in dropped)
    out = CliRunner().invoke(main, ["stats", str(run), "--no-plots"])  # the drops per reason are in stats
    assert out.exit_code == 0, out.output
    assert all(reason in out.output for reason in {r["reason"] for r in dropped}), out.output
    export = json.loads((run / "export" / "manifest.json").read_text())["counts"]  # pairs, not examples
    assert f"export: train {export['train_pairs']} pairs / {export['train_instructions']} instructions" in out.output


@pytest.mark.parametrize("scores, lengths, why", [
    ([3, 3, 3, 3], [10, 10, 10, 10], "tie"),
    ([3, 3.5, 3, 3], [10, 10, 10, 10], "small_margin"),
    ([1, 5, 3, 2], [10, 16, 10, 10], "length_imbalance"),  # 1.6x longer
    ([1, 5, 3, 2], [10, 15, 10, 10], ""),  # exactly 1.5x: kept
    ([5, 1, 5, 1], [10, 10, 10, 10], ""),  # ties within best/worst: the lowest sample index
    ([2, 5, 3, 2], [0, 50, 1, 1], "length_imbalance"),  # an empty rejected answer: any chosen is infinitely longer
])
def test_choose_ties_margins_and_the_length_guard(scores, lengths, why):
    pair, reason = choose([float(s) for s in scores], lengths, PairsConfig(max_length_ratio=1.5))
    assert reason == why
    assert scores[pair["chosen"]] == max(scores) and scores[pair["rejected"]] == min(scores)
    if scores == [5, 1, 5, 1]:
        assert (pair["chosen"], pair["rejected"]) == (0, 1)


def test_the_length_guard_can_be_switched_off_and_its_ratio_set():
    assert choose([1.0, 5.0], [10, 100], PairsConfig(length_guard=False))[1] == ""
    assert choose([1.0, 5.0], [10, 19], PairsConfig(max_length_ratio=2.0))[1] == ""
    assert choose([1.0, 5.0], [10, 21], PairsConfig(max_length_ratio=2.0))[1] == "length_imbalance"


@pytest.mark.slow  # imports datasets, TRL, transformers: ~4.5 s alone
def test_the_preference_export_loads_with_datasets_and_trl(pref_run):
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from selfinstruct.models import prepare_embedded_model

    run, _ = pref_run
    ex = run / "export"
    ds = load_dataset("json", data_files={s: str(ex / f"{s}.preference.jsonl") for s in ("train", "eval")})
    assert len(ds["train"]) and len(ds["eval"])
    assert len(ds["train"]) + len(ds["eval"]) == len(stage_rows(run, "pairs"))
    train_src = {r["id"] for r in ds["train"]["source"]}
    assert not train_src & {r["id"] for r in ds["eval"]["source"]}  # held out by instruction
    tok = AutoTokenizer.from_pretrained(prepare_embedded_model())
    for row in ds["train"]:
        assert is_conversational(row)
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        text = maybe_apply_chat_template(row, tok)
        assert text["prompt"].endswith("<|im_start|>assistant\n") and text["chosen"] and text["rejected"]
        assert row["chosen"] != row["rejected"] and row["chosen_score"] - row["rejected_score"] >= 1.0
    m = json.loads((ex / "manifest.json").read_text())
    assert set(m["files"]) == {"train.preference.jsonl", "eval.preference.jsonl", "README.md"}
    card = (ex / "README.md").read_text()  # the dataset card names the pairs as the default config
    assert "config_name: preference" in card and "default: true" in card
    assert m["counts"]["train_pairs"] == len(ds["train"]) and m["counts"]["eval_pairs"] == len(ds["eval"])


def test_resume_in_the_middle_of_responses_gives_the_identical_pairs(tmp_path, sft_run, pref_run):
    whole, _ = pref_run
    cfg = pref_config(tmp_path, sft_run)
    run = tmp_path / "run"
    with pytest.raises(Incomplete):  # a server that fails some requests: the run stops, nothing is made up
        run_pipeline(cfg, run, quiet=True, backend=Policy(options=FakeOptions(fail_share=0.02)))
    m = json.loads((run / "responses" / "manifest.json").read_text())
    assert not m["complete"] and m["parts"], "it stopped in the middle of responses"
    run_pipeline(cfg, run, quiet=True, backend=Policy(order_seed=3, cap=2))
    for name in ("train.preference.jsonl", "eval.preference.jsonl"):
        assert (run / "export" / name).read_bytes() == (whole / "export" / name).read_bytes()


def test_the_source_is_part_of_the_stage_hash(tmp_path, sft_run):
    import shutil

    src = tmp_path / "sft"
    shutil.copytree(sft_run, src)
    cfg = pref_config(tmp_path, src, "responses: {source: %s, samples: 2, limit: 3}\n" % src)
    run_pipeline(cfg, tmp_path / "run", quiet=True, backend=FakeBackend())
    f = src / "export" / "train.prompt_completion.jsonl"
    f.write_text("".join(f.read_text().splitlines(keepends=True)[1:]))  # the source run was re-exported
    with pytest.raises(UserError, match="responses"):
        run_pipeline(cfg, tmp_path / "run", quiet=True, backend=FakeBackend())


@pytest.mark.parametrize("stages, extra, why", [
    ("[bootstrap, responses]", "", "'responses' reads another run; it can only come first"),
    ("[responses, pairs, export]", "", "'pairs' reads judge_scores"),
    ("[bootstrap, classify, instances, filter, export]", "", "'export' reads pair, prompt"),
    ("[responses, judge, pairs, export]", "responses: {source: SRC, sampling: {temperature: 0}}", "temperature"),
])
def test_preference_stage_lists_are_checked(tmp_path, sft_run, stages, extra, why):
    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nstages: {stages}\nexport: {{formats: [preference]}}\n"
                 f"{extra.replace('SRC', str(sft_run)) or f'responses: {{source: {sft_run}}}'}\n")
    with pytest.raises(UserError, match=why):
        load_config(p)


def test_an_adapter_policy_is_fingerprinted_by_its_files(tmp_path):
    from selfinstruct.provenance import model_fingerprint

    a = tmp_path / "adapter"
    a.mkdir()
    (a / "adapter_config.json").write_text('{"base_model_name_or_path": "embedded:smollm2-135m-instruct"}')
    (a / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    first = model_fingerprint(str(a))
    (a / "adapter_model.safetensors").write_bytes(b"\1" + b"\0" * 63)  # same size, other weights
    assert "adapter_sha256" in first and model_fingerprint(str(a))["adapter_sha256"] != first["adapter_sha256"]
