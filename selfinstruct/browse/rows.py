"""The columns a row of a run shows in the browser: a stage's record, a reject, an export example.

A record keeps every field it has on disk in `record` (its JSON line, unchanged); the other columns are
what a reviewer filters, facets and searches on: the texts (a record with several instances shows
them numbered in `input` and `output`), the task type (the instruction's root verb, or question/other:
the heuristic of `stats`' diversity section), classification, judge score, constraint types, verified,
the nearest instruction by ROUGE-L and its score."""
from __future__ import annotations

import json
from typing import Any

from ..report.diversity import verb_object

# The columns of a stage's table, in order: the core ones always, the derived ones when a row has them.
CORE = ("seq", "id", "part", "instruction", "input", "output")
DERIVED = ("n_instances", "task_type", "classification", "judge_score", "constraint_types", "verified",
           "nearest_id", "nearest_score", "round", "rank")
TYPES: dict[str, type] = {"seq": int, "part": int, "n_instances": int, "judge_score": float,
                          "nearest_score": float, "round": int, "rank": int}


def _text(x: Any) -> str | None:
    if x is None:
        return None
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _numbered(texts: list[str]) -> str:
    return "\n\n".join(f"[{k}] {t}" for k, t in enumerate(texts, 1))


def texts(row: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    """(input, output, number of instances): the instances' texts, numbered when there are several; a
    row without instances (a reject of one instance, an Alpaca example) shows its own input/output."""
    insts = row.get("instances")
    if not isinstance(insts, list):
        return _text(row.get("input")), _text(row.get("output")), None
    items = [i if isinstance(i, dict) else {"output": i} for i in insts]
    inputs = [_text(i.get("input")) or "" for i in items]
    outputs = [_text(i.get("output")) or "" for i in items]
    if len(items) == 1:
        return inputs[0], outputs[0], 1
    return (_numbered(inputs) if any(inputs) else ""), _numbered(outputs), len(items)


def task_type(row: dict[str, Any]) -> str | None:
    """The instruction's root verb ('write', 'classify', ...), else 'question' or 'other'; for a
    constrained record, of the instruction before its constraints."""
    cons = row.get("constraints")
    text = cons.get("base_instruction") if isinstance(cons, dict) else None
    text = text if isinstance(text, str) else row.get("instruction")
    if not isinstance(text, str) or not text.strip():
        return None
    vo = verb_object(text)
    return vo.verb or vo.kind


def constraint_types(row: dict[str, Any]) -> str | None:
    """The constraint type ids of a constrained record, as a JSON array (Datasette's array facet)."""
    cons = row.get("constraints")
    items = cons.get("items") if isinstance(cons, dict) else None
    if not isinstance(items, list):
        return None
    return json.dumps([str(c.get("id")) for c in items if isinstance(c, dict)])


def verified(row: dict[str, Any]) -> str | None:
    """'yes' when `verify` kept one of the answers (every constraint passed), 'no' when none passed."""
    v = row.get("verify")
    if not isinstance(v, dict):
        return None
    return "no" if v.get("chosen") is None else "yes"


def derived(row: dict[str, Any]) -> dict[str, Any]:
    inp, out, n = texts(row)
    near = row.get("nearest") if isinstance(row.get("nearest"), dict) else {}
    sel = row.get("selection") if isinstance(row.get("selection"), dict) else {}
    cls = row.get("is_classification")
    return {"instruction": _text(row.get("instruction")), "input": inp, "output": out, "n_instances": n,
            "task_type": task_type(row),
            "classification": {True: "yes", False: "no"}.get(cls) if isinstance(cls, bool) else None,
            "judge_score": _number(row.get("judge_score")), "constraint_types": constraint_types(row),
            "verified": verified(row), "nearest_id": _text(near.get("id")) or None,
            "nearest_score": _number(near.get("score")),
            "round": row.get("round") if isinstance(row.get("round"), int) else None,
            "rank": sel.get("rank") if isinstance(sel.get("rank"), int) else None}


def record_row(seq: int, part: int, row: dict[str, Any], line: str) -> dict[str, Any]:
    """A row of a stage's table; a derived column the record does not fill is left out (a table gains the
    column when a record first fills it)."""
    cols = derived(row)
    return {"seq": seq, "id": _text(row.get("id")), "part": part,
            **{k: v for k, v in cols.items() if v is not None or k not in DERIVED}, "record": line}


def reject_row(stage: str, seq: int, part: int, row: dict[str, Any], line: str,
               levels: dict[str, str]) -> dict[str, Any]:
    """A row of the `rejects` table: the stage, why (reason, level from the manifest's counts), and the
    record's columns."""
    reason = _text(row.get("reason")) or "?"
    return {"stage": stage, **record_row(seq, part, row, line), "reason": reason,
            "level": levels.get(reason, "record"), "detail": _text(row.get("detail")),
            "raw": _text(row.get("raw")), "error": _text(row.get("error"))}


def export_row(seq: int, row: Any) -> dict[str, Any]:
    """A row of an export file's table: its fields (nested ones as JSON) and the whole example."""
    row = row if isinstance(row, dict) else {"value": row}
    out: dict[str, Any] = {"seq": seq, "id": _text(row.get("id"))}
    out.update((k, v if isinstance(v, (str, int, float)) or v is None else json.dumps(v, ensure_ascii=False))
               for k, v in row.items() if k not in ("seq", "id", "record"))
    out["record"] = json.dumps(row, ensure_ascii=False)
    return out
