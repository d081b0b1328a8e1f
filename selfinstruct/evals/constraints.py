"""The `constraints` suite: IFEval-style prompts built from a run's held-out instructions.

Each instruction gets one or two verifiable constraints from the IFEval checker registry, the
checker's own description appended to the instruction ("Write a poem about rivers. Answer with less
than 100 words."). Rows have the IFEval schema (key, prompt, instruction_id_list, kwargs) plus the
original `instruction`, so `ifbench.score_response(row, answer, "ifeval")` scores them.

Only checker types that need no NLTK data and whose arguments are generated here are used (so
`length_constraints:number_sentences` and `change_case:capital_word_frequency`, which count NLTK
tokens, are left out; so are `language:response_language`, which measures multilinguality rather than
instruction following for the small English models this project tunes, and
`detectable_format:constrained_response`, whose yes/no/maybe answers make no sense for open tasks).
Pairs that IFEval marks as conflicting, and the few more below, never share a prompt.

Deterministic: each instruction's constraints come from an RNG seeded by (seed, instruction id),
independent of the other instructions and of their order.
"""
from __future__ import annotations

import functools
import hashlib
import random
import string
from typing import Callable, Sequence

from . import checkers

_REL = ("less than", "at least")  # the relations IFEval's checkers accept

# Neutral words for keyword constraints: plain lowercase letters only (the checkers use them as regexes).
_KEYWORDS = (
    "river", "garden", "window", "journey", "lantern", "mountain", "market", "letter", "bridge",
    "harbor", "forest", "signal", "compass", "island", "meadow", "engine", "library", "thunder",
    "pencil", "orchard", "village", "mirror", "candle", "ladder", "canvas", "anchor", "planet",
    "puzzle", "basket", "whistle",
)
_FORBIDDEN = ("very", "really", "just", "thing", "important", "also", "however", "because", "many", "good")
_LETTERS = "abcdeghilmnoprstuwy"
_END_PHRASES = ("Is there anything else I can help with?", "Any other questions?",
                "Let me know if you have additional questions.")


def _keywords_existence(rng: random.Random, _: str) -> dict:
    return {"keywords": rng.sample(_KEYWORDS, 2)}


def _keywords_frequency(rng: random.Random, _: str) -> dict:
    relation = rng.choice(_REL)
    frequency = rng.randint(2, 4) if relation == "less than" else rng.randint(1, 3)
    return {"keyword": rng.choice(_KEYWORDS), "frequency": frequency, "relation": relation}


def _forbidden_words(rng: random.Random, _: str) -> dict:
    return {"forbidden_words": rng.sample(_FORBIDDEN, 2)}


def _letter_frequency(rng: random.Random, _: str) -> dict:
    relation = rng.choice(_REL)
    frequency = rng.randint(5, 12) if relation == "less than" else rng.randint(2, 6)
    return {"letter": rng.choice(_LETTERS), "let_frequency": frequency, "let_relation": relation}


def _number_words(rng: random.Random, _: str) -> dict:
    relation = rng.choice(_REL)
    words = rng.choice((50, 80, 100, 150, 200) if relation == "less than" else (30, 50, 100, 150, 200))
    return {"num_words": words, "relation": relation}


def _nth_paragraph_first_word(rng: random.Random, _: str) -> dict:
    paragraphs = rng.randint(2, 4)
    return {"num_paragraphs": paragraphs, "nth_paragraph": rng.randint(1, paragraphs),
            "first_word": rng.choice(_KEYWORDS)}


def _fixed(**kwargs) -> Callable[[random.Random, str], dict]:
    return lambda rng, instruction: dict(kwargs)


# instruction id -> kwargs generator (rng, instruction text) -> kwargs for the checker's build_description
CONSTRAINT_TYPES: dict[str, Callable[[random.Random, str], dict]] = {
    "keywords:existence": _keywords_existence,
    "keywords:frequency": _keywords_frequency,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:letter_frequency": _letter_frequency,
    "length_constraints:number_words": _number_words,
    "length_constraints:number_paragraphs": lambda rng, _: {"num_paragraphs": rng.randint(2, 5)},
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_content:number_placeholders": lambda rng, _: {"num_placeholders": rng.randint(1, 4)},
    "detectable_content:postscript": lambda rng, _: {"postscript_marker": rng.choice(("P.S.", "P.P.S"))},
    "detectable_format:number_bullet_lists": lambda rng, _: {"num_bullets": rng.randint(2, 5)},
    "detectable_format:number_highlighted_sections": lambda rng, _: {"num_highlights": rng.randint(1, 4)},
    "detectable_format:multiple_sections": lambda rng, _: {"section_spliter": rng.choice(("Section", "SECTION")),
                                                           "num_sections": rng.randint(2, 5)},
    "detectable_format:json_format": _fixed(),
    "detectable_format:title": _fixed(),
    "combination:two_responses": _fixed(),
    "combination:repeat_prompt": lambda rng, instruction: {"prompt_to_repeat": instruction},
    "startend:end_checker": lambda rng, _: {"end_phrase": rng.choice(_END_PHRASES)},
    "startend:quotation": _fixed(),
    "change_case:english_lowercase": _fixed(),
    "change_case:english_capital": _fixed(),
    "punctuation:no_comma": _fixed(),
}

# Conflicts IFEval's table misses: its section splitter regex is case-sensitive ("Section 1"), so an
# all-lowercase or all-capital answer can never have the sections asked for.
_EXTRA_CONFLICTS = (
    ("detectable_format:multiple_sections", "change_case:english_lowercase"),
    ("detectable_format:multiple_sections", "change_case:english_capital"),
)


@functools.lru_cache(maxsize=1)
def _conflicts() -> dict[str, frozenset[str]]:
    table = checkers.ifeval_conflicts()
    for a, b in _EXTRA_CONFLICTS:
        table.setdefault(a, {a}).add(b)
        table.setdefault(b, {b}).add(a)
    return {k: frozenset(v) for k, v in table.items()}


def _rng(seed: int, instruction_id: str) -> random.Random:
    # hashlib, not hash(): Python salts str hashes per process.
    digest = hashlib.sha256(f"{seed}\0{instruction_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def instruction_key(instruction: str) -> str:
    """A stable key for an instruction given without an id: a digest of its text."""
    return hashlib.sha256(instruction.strip().encode()).hexdigest()[:16]


def _describe(instruction_id: str, kwargs: dict) -> str:
    checker = checkers.load_registry("ifeval")[instruction_id](instruction_id)
    return checker.build_description(**kwargs)


def build_prompt(instruction: str, key: str, seed: int = 0, max_constraints: int = 2) -> dict:
    """One IFEval-schema row: `instruction` with one to `max_constraints` constraints appended."""
    if not instruction.strip():
        raise ValueError(f"instruction {key!r} is empty")
    rng = _rng(seed, key)
    conflicts = _conflicts()
    available = sorted(CONSTRAINT_TYPES)
    ids: list[str] = []
    for _ in range(rng.randint(1, max(1, max_constraints))):
        choices = [c for c in available if not any(c in conflicts.get(i, {i}) for i in ids)]
        if not choices:
            break
        ids.append(rng.choice(choices))
    kwargs = [CONSTRAINT_TYPES[i](rng, instruction.strip()) for i in ids]
    text = instruction.strip()
    if text[-1] not in string.punctuation:
        text += "."  # "Write a poem about rivers Answer with ..." reads as one sentence otherwise
    prompt = " ".join([text] + [_describe(i, k).strip() for i, k in zip(ids, kwargs)])
    return {"key": key, "prompt": prompt, "instruction_id_list": ids, "kwargs": kwargs,
            "instruction": instruction}


def build_constraint_prompts(instructions: Sequence[str], *, seed: int = 0, ids: Sequence[str] | None = None,
                             max_constraints: int = 2) -> list[dict]:
    """IFEval-schema rows for held-out instructions, in their order. `ids` (e.g. the run's record
    ids) key the rows and seed their RNGs; without them the key is a digest of the text."""
    if ids is not None and len(ids) != len(instructions):
        raise ValueError(f"{len(instructions)} instructions but {len(ids)} ids")
    keys = [str(i) for i in ids] if ids is not None else [instruction_key(t) for t in instructions]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"duplicate instruction key {dup!r} (the same instruction twice?)")
    return [build_prompt(t, k, seed, max_constraints) for t, k in zip(instructions, keys)]
