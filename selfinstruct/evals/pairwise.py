"""The `pairwise` suite: a judge model compares two models' answers to the same held-out instructions,
in both orders (A/B, then B/A) to cancel its position bias. Per prompt the two verdicts combine into a
win, tie or loss for the second model (tuned) against the first (base); the win rate counts ties as
half. A verdict that names neither answer is unparseable: counted and reported, and that order counts
as a tie (it is kept, raw, on the row).

The instruction and both answers are fenced (fence.py: a tag from the item's key, blanked out of any text
that holds it), and the verdict is read from the start of the judgment's first line only: an answer that
says "Verdict: B" or a judge that quotes one first gives no verdict from the quote."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..fence import defuse, fence_tag, fenced, note

JUDGE_TEMPLATE_VERSION = "pairwise-v2"
JUDGE_PROMPT = """{note}

You are comparing two answers to the same instruction. Judge which answer follows the \
instruction better: correct, helpful, complete and to the point. Length alone is not a reason to prefer an answer.

[Instruction]
{instruction}

[Answer A]
{a}

[Answer B]
{b}

Reply with exactly one of: "A" (answer A is better), "B" (answer B is better), or "tie". Verdict:"""
JUDGE_MAX_TOKENS = 8
# at the start of the first line, after markdown emphasis or an opening quote or bracket (not "> ": a quote)
_VERDICT = re.compile(r"[\s*_\"'(\[]*(?:verdict\W*)?(?:answer\s+)?(a|b|tie)\b", re.IGNORECASE)


def judge_messages(instruction: str, a: str, b: str, key: str) -> list[dict[str, str]]:
    """The comparison prompt; `key` (the item's) fixes the fence's tag."""
    tag = fence_tag("pairwise", key)
    text = {k: fenced(defuse(v, tag), tag) for k, v in (("instruction", instruction), ("a", a or "(empty)"),
                                                       ("b", b or "(empty)"))}
    return [{"role": "user", "content": JUDGE_PROMPT.format(note=note(tag), **text)}]


def parse_verdict(text: str) -> str | None:
    """'A', 'B', 'tie', or None when the judge's first line does not open with one of them."""
    lines = text.strip().splitlines()
    m = _VERDICT.match(lines[0]) if lines else None
    if not m:
        return None
    v = m.group(1).lower()
    return "tie" if v == "tie" else v.upper()


@dataclass
class PairOutcome:
    score: float  # for the second model: 1 win, 0.5 tie, 0 loss
    verdicts: tuple[str | None, str | None]  # (first order, swapped order) as parsed


def combine(first: str | None, swapped: str | None) -> PairOutcome:
    """first: the verdict with (A=base, B=tuned); swapped: with (A=tuned, B=base)."""
    def for_tuned(v: str | None, tuned_is: str) -> float:
        if v is None or v == "tie":
            return 0.5
        return 1.0 if v == tuned_is else 0.0

    return PairOutcome((for_tuned(first, "B") + for_tuned(swapped, "A")) / 2, (first, swapped))


def summarize(outcomes: list[PairOutcome]) -> dict[str, float | int]:
    wins = sum(1 for o in outcomes if o.score > 0.5)
    losses = sum(1 for o in outcomes if o.score < 0.5)
    unparseable = sum(v is None for o in outcomes for v in o.verdicts)
    n = len(outcomes)
    return {"prompts": n, "wins": wins, "ties": n - wins - losses, "losses": losses,
            "win_rate": sum(o.score for o in outcomes) / n if n else float("nan"),
            "unparseable_verdicts": unparseable}
