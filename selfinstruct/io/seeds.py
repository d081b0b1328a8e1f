"""Seed task loading: Self-Instruct JSONL (this project's and the original), and Alpaca JSON/JSONL."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .jsonl import iter_jsonl, read_regular


@dataclass(frozen=True)
class Instance:
    input: str
    output: str


@dataclass(frozen=True)
class SeedTask:
    id: str
    instruction: str
    instances: tuple[Instance, ...] = field(default_factory=tuple)
    is_classification: bool = False
    name: str = ""
    category: str = ""  # the task type a human dataset gives (Dolly's category), else empty


def _str_field(obj: dict, key: str, path, line, *, required=True, where=None) -> str:
    label = where or key
    if key not in obj:
        if required:
            raise UserError("missing", path=path, line=line, field=label)
        return ""
    v = obj[key]
    if not isinstance(v, str):
        raise UserError(f"expected a string, got {type(v).__name__}", path=path, line=line, field=label)
    return v


def _parse_self_instruct(obj: dict, path, line: int, index: int) -> SeedTask:
    instruction = _str_field(obj, "instruction", path, line)
    if not instruction.strip():
        raise UserError("empty", path=path, line=line, field="instruction")
    tid = obj.get("id", f"seed_task_{index}")
    if not isinstance(tid, (str, int)) or isinstance(tid, bool):
        raise UserError(f"expected a string, got {type(tid).__name__}", path=path, line=line, field="id")
    raw_instances = obj.get("instances", [])
    if not isinstance(raw_instances, list):
        raise UserError(f"expected a list, got {type(raw_instances).__name__}", path=path, line=line,
                        field="instances")
    instances = []
    for j, inst in enumerate(raw_instances):
        if not isinstance(inst, dict):
            raise UserError(f"expected an object, got {type(inst).__name__}", path=path, line=line,
                            field=f"instances[{j}]")
        instances.append(Instance(_str_field(inst, "input", path, line, required=False, where=f"instances[{j}].input"),
                                  _str_field(inst, "output", path, line, where=f"instances[{j}].output")))
    is_cls = obj.get("is_classification", False)
    if not isinstance(is_cls, bool):
        raise UserError(f"expected true or false, got {is_cls!r}", path=path, line=line, field="is_classification")
    name = obj.get("name", "")
    if not isinstance(name, str):
        raise UserError(f"expected a string, got {type(name).__name__}", path=path, line=line, field="name")
    return SeedTask(id=str(tid), instruction=instruction.strip(), instances=tuple(instances),
                    is_classification=is_cls, name=name)


def _parse_alpaca(obj: dict, path, line: int | None, index: int) -> SeedTask:
    instruction = _str_field(obj, "instruction", path, line)
    if not instruction.strip():
        raise UserError("empty", path=path, line=line, field="instruction")
    inp = _str_field(obj, "input", path, line, required=False)
    out = _str_field(obj, "output", path, line, required=False)
    instances = (Instance(inp, out),) if out else ()
    return SeedTask(id=f"seed_task_{index}", instruction=instruction.strip(), instances=instances)


def human_seed_tasks(rows: list[tuple[int | None, Any]], path: Path) -> list[SeedTask]:
    """Seed tasks from a human dataset's rows (Dolly, OpenAssistant, ShareGPT): each conversation's first
    exchange (Dolly: the instruction, its context as the input, the response), its category kept as the
    task type (Dolly's `classification` category marks a classification task)."""
    from .human import conversations
    out = []
    for c in conversations(rows, path):
        users = [m for m in c.messages if m["role"] == "user"]
        answer = next(m["content"] for m in c.messages if m["role"] == "assistant")
        inst = c.meta.get("instruction") or users[0]["content"]
        out.append(SeedTask(id=c.id, instruction=inst, instances=(Instance(c.meta.get("context", ""), answer),),
                            is_classification=c.category == "classification", name=c.category,
                            category=c.category))
    return out


def load_seed_tasks(path: str | Path) -> list[SeedTask]:
    """Load seed tasks. Accepts Self-Instruct JSONL (`instruction`, `instances`, `is_classification`),
    Alpaca JSONL or an Alpaca JSON array (`instruction`, `input`, `output`), and the human datasets of
    io/human.py (Dolly-15k, OpenAssistant trees, ShareGPT)."""
    path = Path(path)
    from .human import CONVERSATIONS, file_format
    raw = read_regular(path, missing="seed file not found")
    rows: list[tuple[int | None, Any]]
    if raw.lstrip().startswith(b"["):
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise UserError(f"not valid UTF-8 (byte {e.start})", path=path) from None
        except json.JSONDecodeError as e:
            raise UserError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from None
        rows = [(None, obj) for obj in data]
    else:
        rows = list(iter_jsonl(path))
    if file_format([obj for _, obj in rows]) in CONVERSATIONS:
        human = human_seed_tasks(rows, path)
        if not human:
            raise UserError("no seed tasks in file (it is empty)", path=path)
        return human
    tasks: list[tuple[int | None, SeedTask]] = []  # (line, task)
    for i, (line, obj) in enumerate(rows):
        if not isinstance(obj, dict):
            raise UserError(f"item {i}: expected an object", path=path)
        parse = _parse_self_instruct if "instances" in obj else _parse_alpaca
        tasks.append((line, parse(obj, path, line, i)))
    if not tasks:
        raise UserError("no seed tasks in file (it is empty)", path=path)
    first_line: dict[str, int | None] = {}
    for line, t in tasks:
        if t.id in first_line:
            first = first_line[t.id]
            raise UserError(f"duplicate id {t.id!r}" + (f" (first on line {first})" if first else ""),
                            path=path, line=line, field="id")
        first_line[t.id] = line
    return [t for _, t in tasks]
