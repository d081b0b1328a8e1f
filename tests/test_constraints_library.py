"""The training-constraint library (selfinstruct/constraints/, issue #24 items 1 and 2): every type's
strict and loose checks against hand-written answers, checks that never raise (hypothesis, lone
surrogates, 1 MB answers), samplers, phrasings, the conflict table, the registry and its plugins, the
`constraints` command, and disjointness from what the evaluation suites test."""
from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfinstruct.cli import main
from selfinstruct.constraints import (Constraint, ConstraintType, check_all, compatible, conflict_table,
                                      constraint_rows, constraint_types, describe_all, get_type,
                                      loose_variants, register_constraint, sample_constraints)
from selfinstruct.constraints import plugins, registry

BUILTIN = [t for t in constraint_types() if t.startswith("train:")]

# --- hand-written answers: type -> (kwargs, answers that follow it, answers that do not) ----------------

TABLE = "| Name | Age |\n| :--- | ---: |\n| Ann | 3 |\n| Bob | 4 |"
EXAMPLES: dict[str, tuple[dict, list[str], list[str]]] = {
    "train:hyphen_sentences": ({}, [
        "The sky is blue.-Grass is green.-Water is wet.",
        "Hello there!-How are you?-I am fine.",
        "We met at noon.-It rained all day, and we stayed in.",
    ], [
        "The sky is blue. Grass is green.",
        "The sky is blue - grass is green.",
        "One sentence only.",
        "A is first.-B is second. C is third.",
        "First.-\nSecond.",
        "",
    ]),
    "train:sentence_first_word": ({"word": "indeed"}, [
        "Indeed the sky is blue. Indeed grass is green.",
        "indeed, this works! Indeed it does?",
        "Indeed a title\n- Indeed a list item\nIndeed again.",
    ], [
        "Indeed the sky is blue. Grass is green.",
        "The sky is indeed blue.",
        "Indeedly so. Indeed yes.",
        "   ",
        "...",
    ]),
    "train:sentence_last_word": ({"word": "today"}, [
        "We start today. We finish today!",
        "Is it raining today? It is sunny today.",
        "Rest today\nPlay (a lot) today.",
    ], [
        "We start today. We finish tomorrow.",
        "Today we start.",
        "We start today. We finish todays.",
        "",
    ]),
    "train:answer_first_word": ({"word": "honestly"}, [
        "Honestly, I do not know.",
        "honestly this is fine",
        "**Honestly** - yes.",
        "\"Honestly,\" she said.",
    ], [
        "I honestly do not know.",
        "Honest answer: no.",
        "1 Honestly",
        "",
    ]),
    "train:answer_last_word": ({"word": "together"}, [
        "We did it together.",
        "Let us go together!",
        "together",
        "Stronger **together**.",
    ], [
        "Together we stand.",
        "We did it together, mostly.",
        "together-ish",
        "",
    ]),
    "train:bigram_wrap": ({"bigram": "golden lantern"}, [
        "Golden lantern: this is the answer, golden lantern.",
        "golden lantern glows at night golden lantern",
        "**Golden Lantern** shines bright and warm, **golden lantern**!",
        "golden lantern golden lantern",
    ], [
        "golden lantern",
        "Golden lantern at the start only.",
        "At the end only golden lantern.",
        "lantern golden in the wrong order golden lantern",
    ]),
    "train:no_full_stops": ({}, [
        "Hello world",
        "Is this fine? Yes!",
        "No periods here, none at all",
    ], [
        "Hello world.",
        "Pi is 3.14 roughly",
        "Wait…",
        "",
    ]),
    "train:no_exclamation": ({}, [
        "Calm answer.",
        "Is it? Yes.",
        "¿Qué tal?",
    ], [
        "Wow!",
        "¡Hola",
        "Hi！",
        "",
    ]),
    "train:parentheticals": ({"min_count": 2}, [
        "This (one) and that (two).",
        "Nested ((inner) outer) and (second) ok.",
        "(a) (b) (c)",
    ], [
        "Only (one) here.",
        "Numbers (1) (2) (3) only.",
        "Unclosed (one and (two",
        "(a) ()",
        "No brackets.",
    ]),
    "train:square_bracket_words": ({}, [
        "[Hello] [world].",
        "[This] [is] [well-known], [right]?",
        "[one]\n[two]",
    ], [
        "[Hello] world.",
        "[Hello world]",
        "No brackets",
        "[] []",
    ]),
    "train:no_digits": ({}, [
        "twenty-one apples",
        "No numbers here.",
        "Score: ten out of ten",
    ], [
        "I have 3 apples",
        "Year 2024",
        "Arabic-Indic \u0663 is a digit too",
        "",
    ]),
    "train:max_word_length": ({"max_letters": 6}, [
        "I like short words.",
        "Cats nap a lot; don't wake them",
        "abcdef ok 1234567890",
    ], [
        "Extraordinary",
        "This sentence has complicated words",
        "abcdefg",
    ]),
    "train:no_contractions": ({}, [
        "I do not know.",
        "It is fine, 'quoted' text is ok.",
        "The book of Anna.",
    ], [
        "I don't know.",
        "It\u2019s fine.",
        "Anna's book.",
        "",
    ]),
    "train:words_per_line": ({"lines": 3, "words": 4}, [
        "one two three four\nfive six seven eight\nnine ten eleven twelve",
        "- a b c d\n\n- e f g h\n\n- i j k l",
        "The cat sat down.\nThe dog ran off.\nA bird flew away.",
    ], [
        "one two three four\nfive six seven eight",
        "one two three four\nfive six seven eight nine\nten eleven twelve thirteen",
        "a b c d\ne f g h\ni j k l\nm n o p",
        "",
    ]),
    "train:sentence_max_words": ({"max_words": 5}, [
        "Short one. Another short one! Fine?",
        "I am here.",
        "Cats nap.\nDogs run.",
    ], [
        "This sentence has far too many words in it.",
        "Ok. This second sentence is definitely too long.",
        "...",
        "",
    ]),
    "train:yaml_keys": ({"keys": ["title", "summary"]}, [
        "title: A day out\nsummary: We went to the beach.",
        "summary: |\n  Multi-line\n  text\ntitle: Beach",
        "# a comment\ntitle: x\nsummary: [a, b]",
    ], [
        '{"title": "x", "summary": "y"}',
        "title: x",
        "title: x\nsummary: y\nextra: z",
        "title:\nsummary: y",
        "- title\n- summary",
        "title: x\nsummary: y: z",
        "title: x\nsummary: y\n---\ntitle: x\nsummary: y",
    ]),
    "train:toml_tables": ({"tables": ["author", "notes"]}, [
        '[author]\nname = "Ann"\n\n[notes]\ntext = "hi"',
        'author.name = "Ann"\nnotes.text = "x"',
        '[author]\nname = "A"\nage = 3\n[notes]\nlist = [1, 2]',
    ], [
        '[author]\nname = "Ann"',
        '[author]\n[notes]\nx = 1',
        'title = "x"\n[author]\na = 1\n[notes]\nb = 2',
        '[author\nname = 1',
        "",
    ]),
    "train:markdown_table": ({"columns": 2, "rows": 2}, [
        "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |",
        f"Here it is:\n\n{TABLE}\n\nDone.",
        "|x|y|\n|-|-|\n|1||\n|2|3|",
    ], [
        "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n| 5 | 6 |",
        "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n| 3 | 4 | 5 |",
        "| a | b |\n| 1 | 2 |\n| 3 | 4 |\n| 5 | 6 |",
        f"{TABLE}\n\n{TABLE}",
        "| | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |",
        "",
    ]),
}

# Answers a model wraps in a preamble, a closing line, a code fence or bold: strict fails, loose passes.
LOOSE_ONLY = [
    ("train:hyphen_sentences", {}, "Sure.\nA is first.-B is second."),
    ("train:sentence_first_word", {"word": "indeed"}, "Here it is:\nIndeed yes. Indeed no."),
    ("train:answer_first_word", {"word": "honestly"}, "Answer:\nHonestly, yes."),
    ("train:answer_last_word", {"word": "together"}, "We did it together.\nLet me know if you need more."),
    ("train:no_full_stops", {}, "A short answer\n(I hope this helps.)"),
    ("train:yaml_keys", {"keys": ["title", "summary"]}, "```yaml\ntitle: x\nsummary: y\n```"),
    ("train:toml_tables", {"tables": ["author", "notes"]}, '```toml\n[author]\nname = "A"\n[notes]\nb = 1\n```'),
    ("train:max_word_length", {"max_letters": 6}, "Cats nap a lot\n\nAcknowledgements: everybody"),
]


def _cases(passing: bool):
    for type_id, (kwargs, good, bad) in EXAMPLES.items():
        for i, text in enumerate(good if passing else bad):
            yield pytest.param(type_id, kwargs, text, id=f"{type_id}-{i}")


def test_every_builtin_type_has_three_passing_and_three_failing_answers():
    assert sorted(EXAMPLES) == sorted(BUILTIN)
    assert all(len(good) >= 3 and len(bad) >= 3 for _, good, bad in EXAMPLES.values())


@pytest.mark.parametrize("type_id,kwargs,text", list(_cases(True)))
def test_passing_answers_pass_strict_and_loose(type_id, kwargs, text):
    t = get_type(type_id)
    assert t.check(text, **kwargs) is True
    assert t.check_loose(text, **kwargs) is True  # loose tries the text itself first


@pytest.mark.parametrize("type_id,kwargs,text", list(_cases(False)))
def test_failing_answers_fail_strict(type_id, kwargs, text):
    assert get_type(type_id).check(text, **kwargs) is False


@pytest.mark.parametrize("type_id,kwargs,text", LOOSE_ONLY, ids=[c[0] for c in LOOSE_ONLY])
def test_loose_forgives_a_preamble_a_closing_line_a_fence(type_id, kwargs, text):
    t = get_type(type_id)
    assert t.check(text, **kwargs) is False and t.check_loose(text, **kwargs) is True


def test_loose_variants_are_ifevals():
    assert list(loose_variants("")) == [] and list(loose_variants(" \n ")) == []
    assert list(loose_variants("intro\n**body**\noutro")) == [
        "intro\n**body**\noutro", "**body**\noutro", "intro\n**body**", "**body**",
        "intro\nbody\noutro", "body\noutro", "intro\nbody", "body"]
    assert "Title\ntext" in loose_variants("## Title\ntext")


# --- no check raises, on any text, in about linear time -------------------------------------------------

FRAGMENTS = ["Indeed", "today", "golden", "lantern", "word", " ", ". ", ".-", "!", "?", "-", "\n", "\n\n",
             "| a | b |", "|---|---|", "|", "title: x", "summary: y", "- ", "[author]", "x = 1", '"', "```",
             "**", "# ", "(", ")", "[", "]", "'", "’", "don't", "3", "…", "\t", ":", "{", "}", "&a", "*a",
             "\ud800", "\udfff", "\x00", "\u2028", "\r\n"]
texts = st.one_of(
    st.text(st.one_of(st.characters(), st.sampled_from(["\ud800", "\udc00", "\udfff"])), max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join),
)


@pytest.mark.parametrize("type_id", BUILTIN)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, seed=st.integers(0, 2**32 - 1))
def test_no_check_raises_on_any_text(type_id, text, seed):
    t = get_type(type_id)
    kwargs = t.sample(random.Random(seed))
    strict, loose = t.check(text, **kwargs), t.check_loose(text, **kwargs)
    assert type(strict) is bool and type(loose) is bool
    assert loose or not strict  # loose never refuses what strict accepts


MB = 1 << 20


def _fill(unit: str) -> str:
    return (unit * (MB // len(unit) + 1))[:MB]


# 1 MB answers shaped to hit each check's longest path: sentences, lines, table rows, unclosed brackets,
# YAML-like lines, markdown and lone surrogates.
BIG = {
    "prose": _fill("Indeed it rains today (truly). "),
    "lines": _fill("one two three\n"),
    "rows": _fill("| a | b |\n"),
    "brackets": _fill("[(\ud800"),
    "yaml": _fill("title: x\n"),
    "markdown": _fill("**# x \ud800.-\n"),
}


@pytest.mark.parametrize("shape", list(BIG))
@pytest.mark.parametrize("type_id", BUILTIN)
def test_no_check_raises_on_empty_surrogate_and_1mb_answers(type_id, shape):
    t = get_type(type_id)
    kwargs = t.sample(random.Random(0))
    for text in ("", " ", "\ud800", "\ud800\n\udfff", BIG[shape]):  # in the fast lane's 5 s: linear checks
        assert type(t.check(text, **kwargs)) is bool and type(t.check_loose(text, **kwargs)) is bool


# --- samplers, phrasings, records ------------------------------------------------------------------------


@pytest.mark.parametrize("type_id", BUILTIN)
def test_samplers_are_deterministic_wide_and_every_phrasing_renders(type_id):
    t = get_type(type_id)
    assert len(t.phrasings) >= 3 and len(set(t.phrasings)) == len(t.phrasings)
    drawn = [t.sample(random.Random(seed)) for seed in range(200)]
    assert drawn == [t.sample(random.Random(seed)) for seed in range(200)]
    assert all(json.loads(json.dumps(k)) == k for k in drawn)  # JSON as they are (a record stores them)
    assert set(t.params) == set(drawn[0])
    if t.params:  # wide ranges: many distinct parameter sets, not a handful
        assert len({json.dumps(k, sort_keys=True) for k in drawn}) >= 8
    for kwargs in drawn[:20]:
        texts = [t.describe(kwargs, i) for i in range(len(t.phrasings))]
        assert len(set(texts)) == len(texts) and all("{" not in x for x in texts)
        for value in kwargs.values():  # each phrasing names the parameters
            for part in (value if isinstance(value, list) else [value]):
                assert all(str(part) in x for x in texts), (part, texts)


def test_constraint_records_round_trip_and_check_all():
    cs = [Constraint("train:answer_first_word", {"word": "indeed"}), Constraint("train:no_digits")]
    assert [Constraint.from_dict(json.loads(json.dumps(c.to_dict()))) for c in cs] == cs
    assert check_all("Indeed, two apples.", cs) == [True, True]
    assert check_all("Sure:\nIndeed, two apples.", cs) == [False, True]
    assert check_all("Sure:\nIndeed, two apples.", cs, loose=True) == [True, True]
    assert check_all("Indeed, 2 apples.", cs, loose=True) == [True, False]
    assert cs[0].describe(random.Random(3)) in [cs[0].describe(i) for i in range(3)]
    assert describe_all(cs) == f"{cs[0].describe(0)} {cs[1].describe(0)}"


# --- conflicts and sampling for a prompt -----------------------------------------------------------------


def test_the_declared_conflict_table_is_symmetric_and_names_registered_types():
    types = constraint_types()
    for type_id in BUILTIN:
        for other in types[type_id].conflicts:
            assert other in types, f"{type_id} conflicts with unknown {other}"
            assert type_id in types[other].conflicts, f"{other} does not declare its conflict with {type_id}"
    table = conflict_table()
    assert all(a in table[b] for a in table for b in table[a])
    assert all(a in table[a] for a in table)  # a type never comes twice


def test_conflicting_types_cannot_both_hold_on_examples():
    """Spot checks of the table: answers following one side of a declared conflict fail the other."""
    table = conflict_table()
    assert "train:yaml_keys" in table["train:square_bracket_words"]
    assert not get_type("train:yaml_keys").check("[title]: [x]\n[summary]: [y]", keys=["title", "summary"])
    assert "train:hyphen_sentences" in table["train:words_per_line"]
    assert "train:answer_first_word" in table["train:bigram_wrap"]


def test_sample_constraints_never_pairs_conflicting_types():
    table = conflict_table()
    seen = set()
    for seed in range(300):
        cs = sample_constraints(random.Random(seed), k=random.Random(-seed).randint(1, 5))
        ids = [c.id for c in cs]
        assert len(set(ids)) == len(ids) and compatible(cs)
        assert not any(b in table[a] for i, a in enumerate(ids) for b in ids[i + 1:])
        seen.update(ids)
    assert set(BUILTIN) <= seen
    assert sample_constraints(random.Random(7), 3) == sample_constraints(random.Random(7), 3)


def test_sample_constraints_keeps_to_the_given_types_and_stops_when_none_is_compatible():
    only = ["train:yaml_keys", "train:toml_tables", "train:markdown_table"]
    for seed in range(20):
        cs = sample_constraints(random.Random(seed), 3, types=only)
        assert len(cs) == 1 and cs[0].id in only  # the formats all conflict
    assert len(sample_constraints(random.Random(0), 4, types=["train:no_digits", "train:no_exclamation"])) == 2
    with pytest.raises(KeyError, match="train:nope"):
        sample_constraints(random.Random(0), 1, types=["train:nope"])
    assert not compatible([Constraint("train:yaml_keys", {}), Constraint("train:toml_tables", {})])


# --- the registry and its plugins ------------------------------------------------------------------------


class _Rhymes(ConstraintType):
    id = "plugin:ends_with_rhyme"
    family = "plugin"
    params = {"sound": "a rhyme ending"}
    phrasings = ("End with a word ending in '{sound}'.", "Finish on a '{sound}' rhyme.", "Last word: *{sound}.")
    nearest_eval = {"startend:end_checker": "a rhyme, not a phrase"}
    conflicts = frozenset({"train:answer_last_word"})

    def sample(self, rng):
        return {"sound": rng.choice(["ight", "ay"])}

    def holds(self, text, sound):
        return text.rstrip(".!? ").endswith(sound)


class _EntryPoint:
    def load(self):
        register_constraint(_Rhymes)


def test_a_plugin_registers_a_type_through_the_entry_point_group(monkeypatch):
    from selfinstruct import entry_points as ep

    monkeypatch.setattr(ep, "_loaded", set())
    monkeypatch.setattr(ep, "entry_points",
                        lambda group: [_EntryPoint()] if group == "selfinstruct.constraints" else [])
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))  # the plugin goes with the test
    assert "plugin:ends_with_rhyme" in constraint_types()
    assert list(constraint_types())[:len(BUILTIN)] == BUILTIN  # built-in ones first
    table = conflict_table()  # made symmetric: the built-in type never named the plugin's
    assert "plugin:ends_with_rhyme" in table["train:answer_last_word"]
    assert Constraint("plugin:ends_with_rhyme", {"sound": "ight"}).check("What a night!")
    assert "plugin:ends_with_rhyme" in [r["id"] for r in constraint_rows()]


def test_registration_refuses_what_a_prompt_cannot_use(monkeypatch):
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))

    class TwoPhrasings(_Rhymes):
        id = "plugin:two"
        phrasings = ("a", "b")

    class NoNearest(_Rhymes):
        id = "plugin:lonely"
        nearest_eval = {}

    class Taken(_Rhymes):
        id = "train:no_digits"

    with pytest.raises(TypeError, match="fewer than three phrasings"):
        register_constraint(TwoPhrasings)
    with pytest.raises(TypeError, match="no nearest evaluation types"):
        register_constraint(NoNearest)
    with pytest.raises(ValueError, match="taken"):
        register_constraint(Taken)


def test_constraints_command_lists_every_type():
    r = CliRunner().invoke(main, ["constraints", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["id"] for row in rows] == list(constraint_types())
    assert all(row["family"] and row["description"] and "params" in row for row in rows)
    text = CliRunner().invoke(main, ["constraints"])
    assert text.exit_code == 0 and all(t in text.output for t in BUILTIN)
    assert f"{len(rows)} constraint types" in text.output


# --- disjoint from evaluation ----------------------------------------------------------------------------

# Evaluation-adjacent types kept out of training although their ids differ: each tests, near enough, what an
# evaluation type tests (IFEval's ids come from google-research's instruction_following_eval, IFTrain's from
# the IFBench paper's training set, "IFEvalG").
EXCLUDED = {
    "length_constraints:number_words": "IFEval's word count: the `constraints` suite asks for it, and IFBench's "
                                       "count:word_count_range is a word count too",
    "keywords:frequency": "IFEval's keyword frequency: in the `constraints` suite; IFBench's "
                          "count:keywords_multiple counts keywords as well",
    "detectable_format:constrained_response": "IFEval's fixed yes/no/maybe answers: IFBench's format:options",
    "combination:repeat_prompt": "IFEval's repeat-the-request: in the `constraints` suite; IFBench's "
                                 "repeat:repeat_simple and repeat:repeat_change repeat text too",
    "keywords:keyword_specific_position": "IFTrain's keyword as the n-th word of the m-th sentence: IFBench's "
                                          "words:keywords_specific_position, the same rule",
    "new:copy_span_idx": "IFTrain's copy of a character span of the request: IFBench's repeat:repeat_span",
    "count:count_increment_word": "IFTrain's keywords once, twice, ...: IFBench's count:keywords_multiple",
    "keywords:palindrome": "IFTrain's palindromes: IFBench's words:palindrome",
    "count:count_unique": "IFTrain's no word used twice: IFBench's count:unique_word_count and words:repeats",
    "copy:copy": "the copy family repeats the request: IFBench's repeat:* and the suite's repeat_prompt",
    "copy:copying_simple": "the copy family (see copy:copy)",
    "copy:copying_multiple": "the copy family (see copy:copy)",
    "copy:repeat_phrase": "the copy family: a phrase repeated with changes is IFBench's repeat:repeat_change",
    "count:lowercase_counting": "IFTrain's lowercase words at most N times: IFBench's words:repeats",
    "letters:letter_counting2": "IFTrain's letter X at least N times: the suite's keywords:letter_frequency",
    "keywords:exclude_word_harder": "IFTrain's forbidden word: the suite's keywords:forbidden_words",
    "keywords:word_once": "IFTrain's keyword once: the suite's keywords:existence",
    "keywords:word_count_different_numbers": "IFTrain's keyword N times: the suite's keywords:frequency",
    "keywords:no_adjacent_consecutive": "IFTrain's adjacent words' first letters: IFBench's words:no_consecutive",
    "paragraphs:paragraphs": "IFTrain's paragraph counts: the suite's length_constraints:number_paragraphs",
    "paragraphs:paragraphs2": "IFTrain's paragraph counts (see paragraphs:paragraphs)",
    "keywords:start_end": "IFTrain's same first and last word: IFBench's words:paragraph_last_first on one "
                          "paragraph",
    "letters:letter_counting": "IFTrain's letter total: a length, as the suite's word count is",
    "count:counting_composition": "IFTrain's paragraphs split by *** with N sentences of M words: the suite's "
                                  "number_paragraphs; adapted here as train:words_per_line (lines, no paragraphs)",
}


def _name(type_id: str) -> str:
    return type_id.rsplit(":", 1)[-1]


@pytest.fixture(scope="module")
def eval_ids() -> set[str]:
    """The evaluation types, read now: IFBench's registry (if-verifiable) and the `constraints` suite's."""
    pytest.importorskip("if_verifiable")
    from selfinstruct.evals import checkers
    from selfinstruct.evals.constraints import CONSTRAINT_TYPES

    ifbench = set(checkers.load_registry("ifbench"))
    assert len(ifbench) == 58 and CONSTRAINT_TYPES
    return ifbench | set(CONSTRAINT_TYPES)


def test_no_training_type_shares_an_id_or_a_name_with_evaluation(eval_ids):
    """A training id is no evaluation id nor an excluded one, and its name (after the last colon) is none of
    theirs either: `train:palindrome` is `words:palindrome` under another namespace."""
    taken = eval_ids | set(EXCLUDED)
    for type_id in constraint_types():
        assert type_id not in taken, f"{type_id} is an evaluation (or excluded) type"
        assert _name(type_id) not in {_name(e) for e in taken}, f"{type_id} renames an evaluation type"


def test_every_training_type_declares_its_nearest_evaluation_types(eval_ids):
    for type_id, t in constraint_types().items():
        assert t.nearest_eval, f"{type_id} declares no nearest evaluation types"
        for near, why in t.nearest_eval.items():
            assert near in eval_ids, f"{type_id}: {near} is not an evaluation type"
            assert len(why) > 20, f"{type_id}: say why it differs from {near}"


def test_the_check_fails_on_a_type_that_shares_an_id(eval_ids, monkeypatch):
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))

    class Copycat(_Rhymes):
        id = "train:palindrome"

    register_constraint(Copycat)
    with pytest.raises(AssertionError, match="renames an evaluation type"):
        test_no_training_type_shares_an_id_or_a_name_with_evaluation(eval_ids)


def test_the_readme_lists_every_builtin_type():
    from .conftest import ROOT

    section = (ROOT / "README.md").read_text("utf-8").split("\n## Constraint library\n", 1)[1].split("\n## ", 1)[0]
    assert [line.split("`")[1] for line in section.splitlines() if line.startswith("| `train:")] == BUILTIN


# Answers written to fool a checker: each says (or quotes) that it follows its constraint, in the words a
# model would use or in the constraint's own description, and does not. A check reads the text, never a claim.
CLAIMS = [
    ("train:no_digits", {}, "Checked: this answer uses no digits at all. I have 3 apples."),
    ("train:no_full_stops", {}, "As asked, no full stops anywhere in this answer. Done"),
    ("train:no_exclamation", {}, "No exclamation marks here, as required! Promise"),
    ("train:answer_first_word", {"word": "now"}, "My first word is now, as requested: now."),
    ("train:answer_last_word", {"word": "quickly"}, "Quickly: the last word of this answer is quickly, I promise"),
    ("train:hyphen_sentences", {}, "All sentences are joined by hyphens. Like this one."),
    ("train:square_bracket_words", {}, "Every word is wrapped in [square] brackets, as asked."),
    ("train:bigram_wrap", {"bigram": "misty pebble"}, "Wrapped in misty pebble as asked: here is the answer"),
    ("train:yaml_keys", {"keys": ["author", "risks"]}, "```yaml\nauthor: me\n# risks: covered below\n```"),
    ("train:markdown_table", {"columns": 2, "rows": 2}, "| Here is the table with 2 columns and 2 rows |"),
]


@pytest.mark.parametrize("type_id, kwargs, text", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_an_answer_that_claims_to_follow_its_constraint_is_checked_not_believed(type_id, kwargs, text):
    c = Constraint(type_id, kwargs)
    assert not c.check(text) and not c.check(text, loose=True)
    assert not c.check(f"{c.describe(0)}\n{text}")  # the constraint's own words quoted first change nothing
