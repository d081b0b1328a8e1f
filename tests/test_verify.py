"""The verified pipeline on the fake backend: `constrain` (constraints drawn per record id) and `verify`
(K seeded answers per constrained prompt, checked) answered by a scripted model that passes a known
subset of each prompt's constraints, so the tests know exactly which records verify keeps and which
answer, the pass@1 / pass@K / base-rate counts of its manifest and of `stats`, the pairs `pairs` makes
(exact labels and Tülu-style), the export, and that a run killed in the middle of verify resumes to the
identical shards."""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.backends.base import Completion
from selfinstruct.backends.fake import FakeBackend
from selfinstruct.cli import main
from selfinstruct.constraints import Constraint
from selfinstruct.generate.config import load_config
from selfinstruct.generate.constrained import constrained_instruction
from selfinstruct.generate.options import derive_seed
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.stages.verify import first_seed
from selfinstruct.io.errors import UserError
from selfinstruct.report.compute import compute_report

from .conftest import PROJECT_SEEDS, dying, run_files, stage_rows

pytestmark = pytest.mark.timeout(120)

TYPES = ["train:no_digits", "train:no_exclamation", "train:no_full_stops", "train:answer_first_word",
         "train:answer_last_word"]
K, B = 4, 2
UP_TO_CONSTRAIN = "[bootstrap, classify, instances, filter, constrain]"
VERIFIED = "[bootstrap, classify, instances, filter, constrain, verify, pairs, export]"


def config(tmp_path: Path, stages: str = VERIFIED, extra: str = "", name: str = "v.yaml"):
    p = tmp_path / name
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nstages: {stages}\n"
                 "bootstrap: {num_instructions: 24, requests_per_round: 4}\n"
                 f"constrain: {{share: 0.75, max_constraints: 2, types: {json.dumps(TYPES)}}}\n"
                 f"verify: {{samples: {K}, base_rate_samples: {B}, batch_size: 3}}\n"
                 "pairs: {by: verify, unconstrained_pairs: true, keep_unpaired: true, length_guard: false}\n"
                 "export: {formats: [messages, prompt_completion, alpaca, preference, constraints]}\n" + extra)
    return load_config(p)


# ------------------------------------------------------------------------------ the scripted answerer

def kind(rid: str) -> int:
    """What the scripted model does for a record: 0 no answer passes all; 1 answers k >= 2 pass all, but
    answer 2 is cut at max_tokens; 2 every answer passes all; 3 the odd answers pass all, the even ones all
    but the last."""
    return int(hashlib.sha256(rid.encode()).hexdigest(), 16) % 4


ALREADY = ("train:no_exclamation", "train:no_digits")  # what the model's answers satisfy unasked


def passes(rid: str, k: int, n: int, base: list[Constraint] | None = None) -> set[int]:
    """The constraints (indices) answer k to record `rid` (n constraints) passes; with `base` (the
    record's constraints): its k-th answer to the prompt without them, which passes the types ALREADY."""
    if base is not None:
        return {i for i, c in enumerate(base) if c.id in ALREADY}
    h = kind(rid)
    if h == 0:
        return set(range(n - 1))  # all but the last one
    if h == 1:
        return set(range(n)) if k >= 2 else set()
    if h == 2:
        return set(range(n))
    return set(range(n)) if k % 2 else set(range(n - 1))


def cut(rid: str, k: int) -> bool:
    return kind(rid) == 1 and k == 2


def text(constraints: list[Constraint], passed: set[int]) -> str:
    """An answer that passes exactly the constraints `passed` of `constraints` (TYPES only)."""
    want = {c.id: (i in passed, c.kwargs) for i, c in enumerate(constraints)}

    def fails(type_id):
        return type_id in want and not want[type_id][0]

    first = want["train:answer_first_word"][1]["word"] if want.get("train:answer_first_word", (0,))[0] else "Zebra"
    last = want["train:answer_last_word"][1]["word"] if want.get("train:answer_last_word", (0,))[0] else "zebra"
    return (f"{first} works{' 7' if fails('train:no_digits') else ''}{' !' if fails('train:no_exclamation') else ''}"
            f"{' .' if fails('train:no_full_stops') else ''} then {last}")


class Answerer(FakeBackend):
    """Answers verify's requests as the plan above says (by the request's seed: s + k), the rest as the
    fake model does; a request the plan cuts finishes with finish_reason "length"."""

    def __init__(self, constrained: list[dict], **kw):
        super().__init__(**kw)
        self.plan: dict[int, tuple[str, int, bool, list[Constraint]]] = {}
        for r in constrained:
            cs = [Constraint.from_dict(c) for c in r["constraints"]["items"]]
            for k in range(K):
                self.plan[first_seed(42, "verify", r["id"]) + k] = (r["id"], k, False, cs)
            for j in range(B):
                self.plan[first_seed(42, "verify", r["id"], "base") + j] = (r["id"], j, True, cs)

    def answer(self, r):
        if r.seed not in self.plan:
            return super().answer(r)
        rid, k, base, cs = self.plan[r.seed]
        return text(cs, passes(rid, k, len(cs), cs if base else None))

    def poll(self):
        out = []
        for h, c in super().poll():
            plan = self.plan.get(self.started[h - 1].seed)
            if plan and not plan[2] and cut(plan[0], plan[1]):
                c = Completion(c.text, "length", c.prompt_tokens, c.completion_tokens, c.error)
            out.append((h, c))
        return out



def constrained_rows(run: Path) -> list[dict]:
    return [r for r in stage_rows(run, "constrain") if "constraints" in r]


@pytest.fixture(scope="module")
def verified_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("verified")
    run = d / "run"
    run_pipeline(config(d, UP_TO_CONSTRAIN), run, quiet=True, backend=FakeBackend(order_seed=1, cap=5))
    constrained = constrained_rows(run)
    backend = Answerer(constrained, order_seed=2, cap=6)
    run_pipeline(config(d), run, quiet=True, backend=backend)
    return run, constrained, backend


# ------------------------------------------------------------------------------------------ constrain

def test_constrain_appends_seeded_constraints_to_a_share_and_keeps_the_base_instruction(verified_run):
    run, constrained, _ = verified_run
    before = {r["id"]: r for r in stage_rows(run, "filter")}
    rows = stage_rows(run, "constrain")
    assert [r["id"] for r in rows] == list(before)  # nothing dropped, order kept
    plain = [r for r in rows if "constraints" not in r]
    assert constrained and plain
    for r in plain:  # outside the share (or a classification task): unchanged
        assert r == before[r["id"]]
    for r in constrained:
        c, was = r["constraints"], before[r["id"]]
        assert not was["is_classification"]
        assert c["base_instruction"] == was["instruction"]
        assert r["instruction"] == constrained_instruction(was["instruction"], c["description"])
        assert 1 <= len(c["items"]) <= 2 and {i["id"] for i in c["items"]} <= set(TYPES)
        assert len({i["id"] for i in c["items"]}) == len(c["items"])
        assert r["instances"] == was["instances"][:1]  # the prompt's input
        rng = random.Random(derive_seed(42, "constrain", "constraints", r["id"]))
        assert rng.random() < 0.75  # drawn per record id
    counts = json.loads((run / "constrain" / "manifest.json").read_text())["counts"]
    assert counts["constrained"] == len(constrained)
    assert sum(v for k, v in counts.items() if k.startswith("type:")) == sum(len(r["constraints"]["items"])
                                                                              for r in constrained)


def test_constrain_is_the_same_on_a_second_run_and_refuses_unknown_types(tmp_path, verified_run):
    run, constrained, _ = verified_run
    again = tmp_path / "again"
    run_pipeline(config(tmp_path, UP_TO_CONSTRAIN), again, quiet=True, backend=FakeBackend(order_seed=9, cap=3))
    assert constrained_rows(again) == constrained
    with pytest.raises(UserError, match=r"constrain.types\[0\].*unknown constraint type 'train:nope'"):
        config(tmp_path, extra="constrain: {types: [train:nope]}\n", name="bad.yaml")


# --------------------------------------------------------------------------------------------- verify

def test_verify_asks_k_seeded_requests_per_prompt_and_keeps_the_first_uncut_answer_passing_all(verified_run):
    run, constrained, backend = verified_run
    asked = Counter(backend.plan[q.seed][0] for q in backend.started if q.seed in backend.plan)
    assert asked == {r["id"]: K + B for r in constrained}  # only constrained prompts, K + B each
    kept = {r["id"]: r for r in stage_rows(run, "verify")}
    dropped = stage_rows(run, "verify", rejects=True)
    for r in constrained:
        rid, n = r["id"], len(r["constraints"]["items"])
        cs = [Constraint.from_dict(c) for c in r["constraints"]["items"]]
        answers = [text(cs, passes(rid, k, n)) for k in range(K)]
        chosen = next((k for k in range(K) if len(passes(rid, k, n)) == n and not cut(rid, k)), None)
        if kind(rid) == 0:
            assert rid not in kept and chosen is None
            continue
        v = kept[rid]["verify"]
        assert v["chosen"] == chosen == {1: 3, 2: 0, 3: 1}[kind(rid)]
        assert v["answers"] == answers and v["truncated"] == [cut(rid, k) for k in range(K)]
        assert v["passed"] == [[i in passes(rid, k, n) for i in range(n)] for k in range(K)]
        assert v["base"]["passed"] == [[i in passes(rid, j, n, cs) for i in range(n)] for j in range(B)]
        assert kept[rid]["instances"] == [{"input": r["instances"][0]["input"], "output": answers[chosen]}]
        assert kept[rid]["prompt"][-1]["content"].startswith(r["instruction"])
    unverified = {r["id"] for r in constrained if kind(r["id"]) == 0}
    assert unverified and {r["id"] for r in dropped} == unverified
    assert all(r["reason"] == "unverified" and len(r["verify"]["answers"]) == K for r in dropped)
    plain = [r for r in stage_rows(run, "constrain") if "constraints" not in r]
    assert all(kept[r["id"]] == r for r in plain)  # passed on unasked


def expected_counts(constrained: list[dict]) -> Counter:
    c: Counter = Counter()
    for r in constrained:
        rid, items = r["id"], r["constraints"]["items"]
        n, cs = len(items), [Constraint.from_dict(i) for i in items]
        for i, item in enumerate(items):
            t = item["id"]
            c[f"asked:{t}"] += 1
            c[f"answers:{t}"] += K
            c[f"pass1:{t}"] += sum(i in passes(rid, k, n) for k in range(K))
            c[f"passk:{t}"] += any(i in passes(rid, k, n) for k in range(K))
            c[f"base_answers:{t}"] += B
            c[f"base_pass:{t}"] += sum(i in passes(rid, j, n, cs) for j in range(B))
        c["pass1_all"] += sum(len(passes(rid, k, n)) == n for k in range(K))
        c["passk_all"] += any(len(passes(rid, k, n)) == n for k in range(K))
        c["verified"] += kind(rid) != 0
        if not {i["id"] for i in items} & set(ALREADY):  # every type one the model does not follow unasked
            c["novel"] += 1
            c["novel_verified"] += kind(rid) != 0
    return c


def test_the_manifest_counts_pass_at_1_pass_at_k_and_base_rates_per_type(verified_run):
    run, constrained, _ = verified_run
    counts = json.loads((run / "verify" / "manifest.json").read_text())["counts"]
    want = expected_counts(constrained)
    for name, n in want.items():
        if not name.startswith("novel"):  # (stats computes that one from the records)
            assert counts.get(name, 0) == n, name
    assert counts["constrained"] == len(constrained) and counts["answers"] == K * len(constrained)
    assert counts["reject:unverified"] == sum(kind(r["id"]) == 0 for r in constrained)
    assert counts["truncated"] == counts["truncated_passing"] == sum(kind(r["id"]) == 1 for r in constrained)


def test_stats_shows_base_rate_pass_at_1_and_pass_at_k_per_type_and_family(verified_run):
    run, constrained, _ = verified_run
    cs = compute_report(run).constraints
    want = expected_counts(constrained)
    assert cs.verified.yes == want["verified"] and cs.verified.total == len(constrained)
    for t in cs.types:
        assert t.pass_at_1 == want[f"pass1:{t.id}"] / want[f"answers:{t.id}"]
        assert t.pass_at_k == want[f"passk:{t.id}"] / want[f"asked:{t.id}"]
        assert t.base_rate == want[f"base_pass:{t.id}"] / want[f"base_answers:{t.id}"]
    assert {t.id for t in cs.types} <= set(TYPES)
    families = {f.id: f for f in cs.families}
    assert sum(f.asked for f in families.values()) == sum(t.asked for t in cs.types)
    assert set(families) <= {"words", "punctuation", "positions"}
    # the base rate is 1 for the types ALREADY followed unasked, 0 for the others: those count
    assert {t.id: t.base_rate for t in cs.types} == {t.id: float(t.id in ALREADY) for t in cs.types}
    assert cs.novel_types == [t.id for t in cs.types if t.id not in ALREADY]
    assert (cs.novel.yes, cs.novel.total) == (want["novel_verified"], want["novel"]) and want["novel"]
    out = CliRunner().invoke(main, ["stats", str(run), "--no-plots"])
    assert out.exit_code == 0, out.output
    assert f"{cs.verified.yes} of {len(constrained)} constrained prompts have a verified answer" in out.output
    for t in cs.types:
        line = next(x for x in out.output.splitlines() if x.startswith(t.id + " "))
        assert f"{100 * t.pass_at_1:.1f}%" in line and f"{100 * t.pass_at_k:.1f}%" in line, line
    assert "pass@4" in out.output and "family punctuation" in out.output
    assert f"{cs.novel.yes} of {cs.novel.total} prompts verified" in out.output
    plain = json.loads(json.dumps(compute_report(run).to_dict()))["constraints"]
    assert plain["verified"]["yes"] == cs.verified.yes and len(plain["types"]) == len(cs.types)
    assert "Constraints: verified answers" in (run / "report.html").read_text()


# ---------------------------------------------------------------------------------------- pairs, export

def test_pairs_are_exact_labels_and_tulu_style_and_the_export_writes_them(verified_run):
    run, constrained, _ = verified_run
    rows = {r["id"]: r for r in stage_rows(run, "pairs")}
    made = tulu = 0
    for r in constrained:
        rid, n = r["id"], len(r["constraints"]["items"])
        if kind(rid) == 0:
            continue
        got = rows[rid]
        if kind(rid) == 2:  # every answer passes: a tie, no pair (kept: keep_unpaired)
            assert "pair" not in got
        else:
            scores = [len(passes(rid, k, n)) for k in range(K)]
            worst = scores.index(min(scores))
            p = got["pair"]
            assert (p["chosen"], p["rejected"], p["ranked_by"]) == (got["verify"]["chosen"], worst, "verify")
            assert p["chosen_score"] == n and p["rejected_score"] == min(scores)
            made += 1
        if {i["id"] for i in r["constraints"]["items"]} <= set(ALREADY):
            assert "pair_unconstrained" not in got  # the unconstrained answers pass them all: no Tülu pair
            continue
        u = got["pair_unconstrained"]  # the first base answer fails a constraint
        assert (u["chosen"], u["rejected"], u["ranked_by"]) == (got["verify"]["chosen"], 0, "unconstrained")
        tulu += 1
    assert made and tulu
    export = run / "export"
    prefs = [json.loads(x) for s in ("train", "eval") for x in (export / f"{s}.preference.jsonl").read_text().splitlines()]
    assert len(prefs) == made + tulu
    for p in prefs:
        r = rows[p["id"]]
        v = r["verify"]
        assert p["chosen"][0]["content"] == v["answers"][v["chosen"]]
        pool = v["base"]["answers"] if p["ranked_by"] == "unconstrained" else v["answers"]
        assert p["rejected"][0]["content"] == pool[(r["pair_unconstrained"] if p["ranked_by"] == "unconstrained"
                                                    else r["pair"])["rejected"]]
        assert p["prompt"] == r["prompt"] and p["constraints"] == ",".join(i["id"] for i in r["constraints"]["items"])
    counts = json.loads((export / "manifest.json").read_text())["counts"]
    # SFT examples: the verified answers and the unconstrained records' instances
    sft = [json.loads(x) for s in ("train", "eval") for x in (export / f"{s}.messages.jsonl").read_text().splitlines()]
    assert len(sft) == sum(len(r["instances"]) for r in rows.values())
    verified = {r["id"]: r["verify"]["answers"][r["verify"]["chosen"]] for r in rows.values() if "verify" in r}
    assert {e["messages"][-1]["content"] for e in sft if e["id"] in verified} == set(verified.values())
    assert counts["train_pairs"] + counts["eval_pairs"] == len(prefs) and "train_pair_instructions" in counts
    card = (export / "README.md").read_text()
    assert "### Constraints and verified answers" in card and "pass@4" in card
    assert all(t in card for t in {i["id"] for r in constrained for i in r["constraints"]["items"]})


def test_the_export_writes_grpos_prompts_split_as_the_sft_examples_and_grpo_reads_them(verified_run):
    from selfinstruct.train.constraint_prompts import load_constraint_prompts

    run, _, _ = verified_run
    rows = {r["id"]: r for r in stage_rows(run, "pairs")}
    export = run / "export"
    for split in ("train", "eval"):
        sft = {json.loads(x)["id"]: json.loads(x) for x in (export / f"{split}.prompt_completion.jsonl").read_text().splitlines()}
        got = [json.loads(x) for x in (export / f"{split}.constraints.jsonl").read_text().splitlines()]
        want = [i for i in sft if rows[i].get("constraints")]
        assert [g["id"] for g in got] == want  # every verified constrained prompt, in the SFT split's order
        for g in got:
            assert g["prompt"] == sft[g["id"]]["prompt"]
            assert g["constraints"] == [{"id": c["id"], "kwargs": c["kwargs"]} for c in rows[g["id"]]["constraints"]["items"]]
        loaded = load_constraint_prompts(export / f"{split}.constraints.jsonl")
        assert [r["id"] for r in loaded] == want
        counts = json.loads((export / "manifest.json").read_text())["counts"]
        assert counts[f"{split}_constraint_prompts"] == len(want)
    assert "config_name: constraints" in (export / "README.md").read_text()


def test_an_export_never_writes_a_constrained_prompt_verify_did_not_check(tmp_path):
    run = tmp_path / "run"
    stages = "[bootstrap, classify, instances, filter, constrain, export]"
    run_pipeline(config(tmp_path, stages, "export: {formats: [messages]}\n"), run, quiet=True, backend=FakeBackend())
    ids = {json.loads(x)["id"] for s in ("train", "eval") for x in (run / "export" / f"{s}.messages.jsonl").read_text().splitlines()}
    constrained = {r["id"] for r in constrained_rows(run)}
    assert constrained and ids and not ids & constrained
    counts = json.loads((run / "export" / "manifest.json").read_text())["counts"]
    assert counts["constrained_unverified"] == len(constrained)


def test_verify_drops_unconstrained_records_when_asked_and_checks_its_settings(tmp_path, verified_run):
    with pytest.raises(UserError, match="temperature"):
        config(tmp_path, extra="verify: {sampling: {temperature: 0}}\n", name="greedy.yaml")
    with pytest.raises(UserError, match="'verify' reads constraints"):
        config(tmp_path, "[bootstrap, classify, instances, filter, verify, export]", name="nocon.yaml")
    with pytest.raises(UserError, match="'pairs' reads prompt"):
        config(tmp_path, "[bootstrap, classify, instances, filter, constrain, pairs, export]", name="nov.yaml")
    src, constrained, _ = verified_run
    run = tmp_path / "run"
    cfg = config(tmp_path, VERIFIED.replace(", pairs, export", "") , "verify: {samples: 4, base_rate_samples: 2, "
                 "batch_size: 3, unconstrained: drop}\n", name="drop.yaml")
    import shutil
    shutil.copytree(src, run, ignore=shutil.ignore_patterns("verify", "pairs", "export"))
    run_pipeline(cfg, run, quiet=True, backend=Answerer(constrained))
    assert {r["id"] for r in stage_rows(run, "verify")} == {r["id"] for r in constrained if kind(r["id"])}
    dropped = Counter(r["reason"] for r in stage_rows(run, "verify", rejects=True))
    assert dropped["unconstrained"] == len(stage_rows(run, "constrain")) - len(constrained)


# --------------------------------------------------------------------------------------------- resume

def test_killed_in_the_middle_of_verify_a_rerun_gives_the_identical_shards(tmp_path, verified_run):
    whole, constrained, _ = verified_run
    crash = tmp_path / "crash"
    run_pipeline(config(tmp_path, UP_TO_CONSTRAIN), crash, quiet=True, backend=FakeBackend(order_seed=5, cap=2))
    assert constrained_rows(crash) == constrained
    with pytest.raises(KeyboardInterrupt):  # only verify calls the model now: it dies half-way
        run_pipeline(config(tmp_path), crash, quiet=True, backend=dying(Answerer(constrained, order_seed=3, cap=3), 12))
    m = json.loads((crash / "verify" / "manifest.json").read_text())
    assert not m["complete"] and 0 < m["state"]["inputs_done"] < len(stage_rows(whole, "constrain"))
    run_pipeline(config(tmp_path), crash, quiet=True, backend=Answerer(constrained, order_seed=4, cap=50))
    a, b = run_files(whole), run_files(crash)
    for stage in ("verify", "pairs", "export"):
        files = sorted(k for k in a if k.startswith(stage + "/") and k != f"{stage}/manifest.json")
        assert files and files == sorted(k for k in b if k.startswith(stage + "/") and k != f"{stage}/manifest.json")
        for f in files:
            assert a[f] == b[f], f
