"""Reading a judge's score, only from the place its rubric asks for it.

A judgment often quotes the answer it judges, and synthetic answers mention scores ("Score: 5", "give it
5", "> Score: 5"): a number found anywhere but in the score's place is no score. Each rubric names one
place:
- FIRST_LINE (AlpaGasus: "first output a single line containing only the score"): the first non-empty
  line, read as models write it ("4", "**4**", "Score: 4/5", "I'd give it a four"). Quoted spans in it
  and a quoted line ("> ...") are not the judge's own words; the first score marker on the line counts.
- LAST_LINE (the additive rubric: 'Conclude with the score using the format: "Score: <total points>"'):
  the last non-empty line, which must be exactly such a line.
- CHOICE (structured outputs): the whole answer is one of the scale's scores.
A place without a valid score gives no score and the reason, never a default: the judge stage rejects
the record, and text after (FIRST_LINE) or before (LAST_LINE) the place never changes the score."""
from __future__ import annotations

import re

FIRST_LINE, LAST_LINE, CHOICE = "first_line", "last_line", "choice"
# The built-in rubrics' scales (lowest, highest score): the judge stage's prompts (generate/prompts.py) and the
# reports that bin a run's scores (report/judge.py) both read them here.
SCALES = {"alpagasus": (1, 5), "additive": (0, 5), "groundedness": (1, 5)}

NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")"
_OUT_OF = r"(?:\s*(?:/|out\s+of)\s*(\d+))?"
_MARKER = re.compile(
    r"\b(?:(?:overall|final|total)\s+)?(?:score|rating|grade|total\s+points|points|"
    r"rated?(?:\s+(?:it|this(?:\s+(?:response|answer))?))?|give\s+(?:it|this(?:\s+(?:response|answer))?))\b"
    r"[\s:=*#'\"\-]*(?:(?:is|of|an?|at|as|be|would\s+be|will\s+be|gets?|receives?)\b[\s:=*'\"]*)*"
    + r"\b" + _NUM + r"\b" + _OUT_OF, re.IGNORECASE)
_FRACTION = re.compile(r"\b" + _NUM + r"\s*(?:/|out\s+of)\s*(\d+)\b", re.IGNORECASE)
_CRITERION = re.compile(r"\b([A-Za-z]{3,})\s*:\s*\**\s*\d+(?:\.\d+)?\b")
_LEADING = re.compile(r"[\s*#\"'(\[]*(\d+(?:\.\d+)?)(?=$|[\s.,;:)*\]\"'!/])")
_ANY_NUMBER = re.compile(r"\b" + _NUM + r"\b", re.IGNORECASE)
_MARKER_WORDS = {"score", "rating", "grade", "points", "total"}
# double, typographic and back quotes; single quotes only where they cannot be an apostrophe ("I'd")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|«[^»]*»|`[^`]*`|(?<![A-Za-z])'[^']*'(?![A-Za-z])")
_SCORE_LINE = re.compile(r"[\s*_#]*(?:(?:overall|final|total)\s+)?score[\s*_]*[:=][\s*_]*(\d+(?:\.\d+)?)"
                         r"(?:\s*(?:/|out\s+of)\s*(\d+))?[\s*_.]*", re.IGNORECASE)


def _number(token: str) -> float:
    word = token.lower()
    return float(NUMBER_WORDS[word]) if word in NUMBER_WORDS else float(token)


def _read_line(line: str) -> tuple[float | None, str | None, str]:
    """(value, scale or None, "") from one line written as models write a score, or (None, None, why)."""
    marker = _MARKER.search(line)
    if marker:
        return _number(marker.group(1)), marker.group(2), ""
    criteria = {c.group(1).lower() for c in _CRITERION.finditer(line)} - _MARKER_WORDS
    lead = _LEADING.match(line)
    if len(criteria) > 1 or (criteria and lead):  # "Accuracy: 4, Helpfulness: 3", "1. Accuracy: 4"
        return None, None, f"criteria scored ({', '.join(sorted(criteria))}) and no overall score"
    fractions = {(_number(f.group(1)), f.group(2)) for f in _FRACTION.finditer(line)}
    if len(fractions) > 1:
        return None, None, "several different scores: " + ", ".join(f"{v:g}/{s}" for v, s in sorted(fractions))
    if fractions:
        value, scale = fractions.pop()
        return value, scale, ""
    if lead:
        return _number(lead.group(1)), None, ""
    numbers = {_number(n.group(1)) for n in _ANY_NUMBER.finditer(line)}
    if len(numbers) == 1:
        return numbers.pop(), None, ""
    if numbers:
        return None, None, "several different numbers and no score: " + ", ".join(f"{n:g}" for n in sorted(numbers))
    return None, None, "no score found"


def parse_judgment(text: str, low: int, high: int, place: str = FIRST_LINE) -> tuple[float | None, str]:
    """(score, "") or (None, why not). `low`..`high`: the rubric's scale; `place`: where its score is."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None, "empty judgment"
    if place == CHOICE:
        answer = text.strip()
        if not re.fullmatch(r"\d+", answer):
            return None, f"not one of the scale's scores {low}-{high} (structured output): {answer[:60]!r}"
        value, scale = float(answer), None
    elif place == LAST_LINE:
        m = _SCORE_LINE.fullmatch(lines[-1])
        if not m:
            return None, "no score found: the last line is not 'Score: N'"
        value, scale = float(m.group(1)), m.group(2)
    elif place == FIRST_LINE:
        if lines[0].lstrip(" \t*").startswith(">"):
            return None, "no score found: the first line is a quotation"
        value, scale, why = _read_line(_QUOTED.sub(" ", lines[0]))
        if why:
            return None, why
    else:
        raise ValueError(f"unknown score place {place!r}")
    if scale is not None and int(scale) != high:
        return None, f"a score on another scale ({value:g}/{scale}, the rubric's is {low}-{high})"
    if not low <= value <= high:
        return None, f"score {value:g} is off the rubric's scale {low}-{high}"
    return value, ""
