"""Rules about punctuation marks: none of a mark (IFTrain's `punctuation_dot` and
`punctuation_exclamation`), and a count of parenthetical remarks."""
from __future__ import annotations

import re

from ..base import ConstraintType
from ..registry import register_constraint

# A parenthetical: round brackets with no bracket inside (nested ones count once, the innermost).
_PARENTHETICAL = re.compile(r"\(([^()]*)\)")
_LETTER = re.compile(r"[^\W\d_]")


@register_constraint
class NoFullStops(ConstraintType):
    id = "train:no_full_stops"
    family = "punctuation"
    params = {}
    phrasings = (
        "Do not use any full stops (periods) anywhere in your answer.",
        "Your entire response must be free of the '.' character; end sentences with other marks or none.",
        "Write the answer without a single period: no '.', not even in numbers or an ellipsis.",
    )
    nearest_eval = {
        "punctuation:no_comma": "bans the comma; here the full stop, which ends almost every English sentence",
        "count:punctuation": "asks for every punctuation mark at least once, the opposite direction",
    }

    def holds(self, text: str) -> bool:
        return "." not in text and "…" not in text


@register_constraint
class NoExclamation(ConstraintType):
    id = "train:no_exclamation"
    family = "punctuation"
    params = {}
    phrasings = (
        "Do not use any exclamation marks in your answer.",
        "Your response must not contain the '!' character at all.",
        "Keep the tone level: not one exclamation mark anywhere in what you write.",
    )
    nearest_eval = {
        "punctuation:no_comma": "bans the comma; here the exclamation mark",
        "count:punctuation": "asks for every punctuation mark at least once, the opposite direction",
    }

    def holds(self, text: str) -> bool:
        return "!" not in text and "¡" not in text and "！" not in text


@register_constraint
class Parentheticals(ConstraintType):
    id = "train:parentheticals"
    family = "punctuation"
    params = {"min_count": "how many parenthetical remarks at least, 1..8"}
    phrasings = (
        "Include at least {min_count} parenthetical remarks in round brackets (like this one).",
        "Add {min_count} or more asides to your answer, each enclosed in parentheses.",
        "Your response must contain no fewer than {min_count} separate comments written inside ( and ).",
    )
    nearest_eval = {
        "format:parentheses": "nests mixed brackets at least five levels deep; here separate round-bracket "
                              "remarks are counted, and nesting adds nothing",
        "format:quote_unquote": "quoted phrases each followed by an explanation; nothing about brackets",
    }

    def sample(self, rng):
        return {"min_count": rng.randint(1, 8)}

    def holds(self, text: str, min_count: int) -> bool:
        found = 0
        for m in _PARENTHETICAL.finditer(text):
            found += bool(_LETTER.search(m.group(1)))  # "(1)" or "()" is not a remark
            if found >= min_count:
                return True
        return False
