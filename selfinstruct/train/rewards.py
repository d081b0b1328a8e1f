"""The reward functions of `selfinstruct grpo`, in the signature TRL's GRPOTrainer calls them with:
`f(prompts, completions, completion_ids, **dataset_columns) -> list[float | None]`, one value per answer.

- `ConstraintShare`: the share of the prompt's constraints an answer follows, strict check (IF-RLVR's
  reward). The dataset's `constraints` column holds each prompt's constraints as a JSON string (an Arrow
  column of objects would merge every type's kwargs into one struct, filling absent ones with None).
- `LengthCost`: minus the share of the token budget an answer used; weighted by `length_penalty`.
- `JudgeScore`: a judge's score of the answer, scaled to [0, 1] by a callable passed in (the judge itself
  is the caller's: train/ runs no generation backend); None where the judge gave no score.
TRL logs each under its `__name__` (`rewards/constraints/mean`, ...), weighted sums as `reward`."""
from __future__ import annotations

import functools
import json
from typing import Any, Callable, Sequence

from ..constraints import Constraint


def answer_text(completion: Any) -> str:
    """The text of one completion: a string, or a conversational completion's last message's content."""
    if isinstance(completion, str):
        return completion
    return str(completion[-1].get("content") or "") if completion else ""


@functools.lru_cache(maxsize=4096)
def decode_constraints(encoded: str) -> tuple[Constraint, ...]:
    return tuple(Constraint.from_dict(c) for c in json.loads(encoded))


def encode_constraints(constraints: Sequence[Constraint]) -> str:
    return json.dumps([c.to_dict() for c in constraints], sort_keys=True, ensure_ascii=False)


def constraint_share(text: str, constraints: Sequence[Constraint]) -> float:
    return sum(c.check(text) for c in constraints) / len(constraints)


class ConstraintShare:
    __name__ = "constraints"

    def __call__(self, prompts, completions, constraints, **_) -> list[float]:
        return [constraint_share(answer_text(c), decode_constraints(cs)) for c, cs in zip(completions, constraints)]


class LengthCost:
    __name__ = "length"

    def __init__(self, budget: int):
        self.budget = budget

    def __call__(self, prompts, completions, completion_ids, **_) -> list[float]:
        return [-min(1.0, len(ids) / self.budget) for ids in completion_ids]


class JudgeScore:
    __name__ = "judge"

    def __init__(self, score: Callable[[list[Any], list[str]], list[float | None]]):
        self.score = score  # (prompts, answer texts) -> a score in [0, 1] or None, per answer

    def __call__(self, prompts, completions, **_) -> list[float | None]:
        return self.score(list(prompts), [answer_text(c) for c in completions])
