"""What `selfinstruct constraints` prints: one row per registered type (id, family, parameters, a sample
description), so a user sees what the pipeline can ask for."""
from __future__ import annotations

import random
from typing import Any

from .plugins import conflict_table, constraint_types


def constraint_rows(seed: int = 0) -> list[dict[str, Any]]:
    """One row per type, in registration order: id, family, params (name -> range), a sample description
    (parameters drawn from an rng seeded by `seed` and the id), sample kwargs, its nearest evaluation
    types with why it differs, and the types it never shares a prompt with."""
    table = conflict_table()
    rows = []
    for type_id, t in constraint_types().items():
        kwargs = t.sample(random.Random(f"{seed}:{type_id}"))
        rows.append({"id": type_id, "family": t.family, "params": dict(t.params),
                     "description": t.describe(kwargs, 0), "sample_kwargs": kwargs,
                     "phrasings": len(t.phrasings), "nearest_eval": dict(t.nearest_eval),
                     "conflicts": sorted(table[type_id] - {type_id})})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain-text listing: one block per type."""
    out = []
    for r in rows:
        params = ", ".join(f"{k} ({v})" for k, v in r["params"].items()) or "none"
        out.append(f"{r['id']}  [{r['family']}]\n  parameters: {params}\n  e.g.: {r['description']}\n"
                   f"  nearest eval: {', '.join(r['nearest_eval'])}\n")
    out.append(f"{len(rows)} constraint types\n")
    return "".join(out)
