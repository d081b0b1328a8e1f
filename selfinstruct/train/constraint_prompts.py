"""RLVR prompts for `selfinstruct grpo`: where DATA points (a run dir, its export dir, or one file) and
its rows, checked: a prompt (message list, ending with a user turn) and the constraints an answer to it
must follow (`{id, kwargs}` of registered constraint types), as the `export` stage's `constraints` format
writes them (`train.constraints.jsonl`, held-out `eval.constraints.jsonl`)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..constraints import Constraint, constraint_types
from ..io.errors import UserError
from ..io.formats import CONSTRAINT_PROMPTS_FILE
from ..io.jsonl import iter_jsonl
from .data import check_messages, resolve_split_file


@dataclass
class PromptFiles:
    train: Path
    eval: Path | None


def resolve_constraint_prompts(data: str | Path, eval_data: str | Path | None = None,
                               no_eval: bool = False) -> PromptFiles:
    """DATA: a run dir (RUN/export/train.constraints.jsonl), an export dir, or one JSONL file (a train.*
    file brings its eval.* sibling). `eval_data` overrides the eval split; `no_eval` drops it."""
    return PromptFiles(*resolve_split_file(data, CONSTRAINT_PROMPTS_FILE.format(split="train"),
                                           "this run has no constrained prompts (generate them with "
                                           "pipelines/verified.yaml, whose export writes the `constraints` format)",
                                           eval_data, no_eval))


def load_constraint_prompts(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a constraints JSONL file as {"id", "prompt", "constraints": [Constraint]}; a bad row
    raises a UserError naming file:line and the field (an unknown type, parameters its check does not take)."""
    path = Path(path)
    types = constraint_types()
    rows = []
    for line, obj in iter_jsonl(path):
        def where(f, msg, line=line):
            raise UserError(msg, path=path, line=line, field=f or None)
        for key in ("prompt", "constraints"):
            if key not in obj:
                where(key, "missing: a constraints row has a prompt (message list) and its constraints")
        prompt = check_messages(obj["prompt"], where, "prompt")
        if prompt[-1]["role"] != "user":
            where("prompt", "the prompt must end with a user message")
        items = obj["constraints"]
        if not isinstance(items, list) or not items:
            where("constraints", "expected a non-empty list of {id, kwargs} objects")
        constraints = []
        for i, c in enumerate(items):
            if not isinstance(c, dict) or not isinstance(c.get("id"), str):
                where(f"constraints[{i}]", "expected an {id, kwargs} object with a string id")
            kwargs = c.get("kwargs") or {}
            if c["id"] not in types:
                where(f"constraints[{i}].id", f"unknown constraint type {c['id']!r} (`selfinstruct constraints` "
                                              "lists them)")
            if not isinstance(kwargs, dict):
                where(f"constraints[{i}].kwargs", f"expected an object, got {type(kwargs).__name__}")
            try:
                inspect.signature(types[c["id"]].holds).bind("", **kwargs)
                types[c["id"]].check("x", **kwargs)
            except Exception as e:  # noqa: BLE001 - any failure of the check on these parameters is bad input
                where(f"constraints[{i}].kwargs", f"not parameters of {c['id']}: {type(e).__name__}: {e}")
            constraints.append(Constraint(c["id"], kwargs))
        rows.append({"id": str(obj.get("id", f"{path.stem}-{line}")), "prompt": prompt, "constraints": constraints})
    return rows
