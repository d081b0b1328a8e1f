"""Constraints on a record: how the `constrain` stage (and a preference run's `responses`) puts them
there, and how `verify`, `judge`, `pairs` and `export` read them back. A leaf of `generate/`.

A constrained record keeps what it was asked without them and which constraints it carries:

    record.instruction = "<instruction>. <the constraints in words>"   (what every later stage and export sees)
    record.extra["constraints"] = {"base_instruction": "<instruction>",
                                   "items": [{"id": "train:no_digits", "kwargs": {}}, ...],
                                   "description": "<the constraints in words>"}

Records without the field carry no constraint. `verify` keeps its checked answers in the record's `verify`
field; `pair_texts` reads the answers a preference pair names from there (or from the instances)."""
from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

from ..constraints import Constraint, describe_all, sample_constraints
from ..io.records import Record
from .options import derive_seed

FIELD = "constraints"
_ENDS = ".!?:;)\"'"


def constrained_instruction(instruction: str, description: str) -> str:
    """The instruction with the constraints appended (a full stop first where it has no end mark)."""
    text = instruction.strip()
    if text and text[-1] not in _ENDS:
        text += "."
    return f"{text} {description}" if text else description


def draw(rng: random.Random, max_constraints: int, types: Sequence[str] | None = None) -> list[Constraint]:
    """One to `max_constraints` compatible constraints (how many, which, and their parameters from `rng`)."""
    return sample_constraints(rng, rng.randint(1, max_constraints), types)


def attach(r: Record, constraints: Sequence[Constraint], rng: random.Random) -> None:
    """Append `constraints` to the record's instruction (each in a phrasing drawn from `rng`) and record them."""
    description = describe_all(constraints, rng)
    r.extra[FIELD] = {"base_instruction": r.instruction, "items": [c.to_dict() for c in constraints],
                      "description": description}
    r.instruction = constrained_instruction(r.instruction, description)


def constrain_share(r: Record, seed: int, stage: str, share: float, max_constraints: int,
                    types: Sequence[str] | None) -> bool:
    """Constrain `r` when its draw (an rng seeded by `seed`, `stage` and its id) falls in `share`; the same
    rng then draws the constraints and their phrasings. True if it did."""
    rng = random.Random(derive_seed(seed, stage, "constraints", r.id))
    if not share or rng.random() >= share:
        return False
    attach(r, draw(rng, max_constraints, types), rng)
    return True


def items_of(row: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The `items` of a record's constraints field (a record's `extra` or a row as read from a shard)."""
    field = (row or {}).get(FIELD) or {}
    return list(field.get("items") or []) if isinstance(field, dict) else []


def constraints_of(r: Record) -> list[Constraint]:
    """The record's constraints, in their order ([] for an unconstrained record)."""
    return [Constraint.from_dict(c) for c in items_of(r.extra)]


def type_ids(r: Record) -> list[str]:
    return [str(c["id"]) for c in items_of(r.extra)]


def base_instruction(r: Record) -> str:
    """What the record asked before its constraints were appended."""
    return str((r.extra.get(FIELD) or {}).get("base_instruction", r.instruction))


def pair_texts(r: Record, pair: Mapping[str, Any]) -> tuple[str, str]:
    """The chosen and the rejected answer of a pair (`pair` or `pair_unconstrained`, by `pairs`): verify's
    answers (the rejected one of a Tülu-style pair from its answers to the prompt without its
    constraints), else the record's instances."""
    by = pair["ranked_by"]
    if by in ("verify", "unconstrained"):
        v = r.extra["verify"]
        rejected = v["base"]["answers"] if by == "unconstrained" else v["answers"]
        return v["answers"][pair["chosen"]], rejected[pair["rejected"]]
    return r.instances[pair["chosen"]].output, r.instances[pair["rejected"]].output
