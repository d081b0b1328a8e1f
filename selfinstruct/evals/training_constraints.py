"""Verifiable constraints for *training* prompts (the `responses` stage): checker types of the IFEval
registry that neither evaluation suite uses, so a preference model is never trained on what it is
evaluated on. The `constraints` suite uses `constraints.CONSTRAINT_TYPES`; the `ifbench` suite uses the
IFBench registry, whose ids (`count:...`, `words:...`) are a different set. That the three are disjoint is
a tested property (tests/test_preference.py).

An answer to a constrained prompt is scored by the checkers, strict: the number of constraints it follows
(an exact label, no judge). The sentence counter runs offline (`checkers.count_sentences`, nupunkt)."""
from __future__ import annotations

import random
import string
from typing import Callable

from . import checkers
from .ifbench import score_response

_REL = ("less than", "at least")

TRAIN_CONSTRAINT_TYPES: dict[str, Callable[[random.Random], dict]] = {
    "length_constraints:number_sentences": lambda rng: {"num_sentences": rng.randint(2, 6),
                                                        "relation": rng.choice(_REL)},
    "change_case:capital_word_frequency": lambda rng: {"capital_frequency": rng.randint(2, 4),
                                                       "capital_relation": rng.choice(_REL)},
}


def add_constraints(text: str, rng: random.Random, max_constraints: int = 1) -> tuple[str, list[str], list[dict]]:
    """`text` with one to `max_constraints` training constraints appended (the checker's own wording), the
    instruction ids and their kwargs."""
    ids = rng.sample(sorted(TRAIN_CONSTRAINT_TYPES), rng.randint(1, min(max_constraints, len(TRAIN_CONSTRAINT_TYPES))))
    kwargs = [TRAIN_CONSTRAINT_TYPES[i](rng) for i in ids]
    table = checkers.load_registry("ifeval")
    text = text.strip()
    if text and text[-1] not in string.punctuation:
        text += "."
    described = [table[i](i).build_description(**k).strip() for i, k in zip(ids, kwargs)]
    return " ".join([text, *described]), ids, kwargs


def followed(prompt: str, ids: list[str], kwargs: list[dict], answer: str) -> int:
    """How many of the constraints `answer` follows (strict checking; a checker error counts as not)."""
    row = {"key": "train", "prompt": prompt, "instruction_id_list": ids, "kwargs": kwargs}
    return sum(1 for r in score_response(row, answer, "ifeval").instructions if r.strict)
