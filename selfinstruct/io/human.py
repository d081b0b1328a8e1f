"""Human-written instruction datasets, read from local files: Dolly-15k (`instruction`, `context`,
`response`, `category`), OpenAssistant's message trees (oasst1/oasst2 exports: the nested `*.trees.jsonl`,
or the flat messages with `parent_id`), ShareGPT conversations (`conversations: [{from, value}]`) and
Alpaca (`instruction`, `input`, `output`). Each row becomes one or more conversations: chat messages
(system, user, assistant, ...; multi-turn kept) and the row's category where it has one.

OpenAssistant trees give one conversation per path: `best` follows the best-ranked (rank 0) reply at
every turn, `all` every root-to-leaf path; deleted messages and their replies are left out, and a path
ends on the last assistant turn. A malformed row raises UserError naming file, line and field (or, with
`rejects`, is appended there as (line, reason) and skipped)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError
from .jsonl import iter_jsonl, read_regular

FORMATS = ("dolly", "oasst", "sharegpt", "alpaca")
CONVERSATIONS = ("dolly", "oasst", "sharegpt")  # read whole by this module (Alpaca rows are read where they are)
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "model": "assistant"}
OASST_ROLES = {"prompter": "user", "assistant": "assistant"}
# where each format's best-known dataset comes from, and its licence (the dataset card names them)
LICENSES = {"dolly": ("databricks-dolly-15k", "cc-by-sa-3.0"), "oasst": ("OpenAssistant oasst1/oasst2", "apache-2.0"),
            "sharegpt": ("ShareGPT conversations", "unknown: model outputs under their provider's terms"),
            "alpaca": ("Stanford Alpaca", "cc-by-nc-4.0")}


@dataclass
class Conversation:
    id: str
    messages: list[dict[str, str]]
    category: str = ""
    fmt: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def multi_turn(self) -> bool:
        return sum(m["role"] == "assistant" for m in self.messages) > 1


class Malformed(Exception):
    def __init__(self, field_name: str, reason: str):
        self.field, self.reason = field_name, reason
        super().__init__(reason)


def detect(obj: dict[str, Any]) -> str | None:
    """The format of one row, by its keys (None: none of these)."""
    if "conversations" in obj:
        return "sharegpt"
    if "message_tree_id" in obj and "prompt" in obj or "parent_id" in obj and "role" in obj:
        return "oasst"
    if "instruction" in obj and "response" in obj:
        return "dolly"
    if "instruction" in obj and "output" in obj:
        return "alpaca"
    return None


def _text(obj: dict, key: str, required: bool = True) -> str:
    v = obj.get(key, None if required else "")
    if not isinstance(v, str) or (required and not v.strip()):
        raise Malformed(key, "missing" if v is None else ("expected a string" if not isinstance(v, str) else "empty"))
    return v


def from_dolly(obj: dict, rid: str) -> list[Conversation]:
    inst, ctx, resp = _text(obj, "instruction"), _text(obj, "context", required=False), _text(obj, "response")
    user = f"{inst.strip()}\n\n{ctx.strip()}" if ctx.strip() else inst.strip()
    return [Conversation(rid, [{"role": "user", "content": user}, {"role": "assistant", "content": resp.strip()}],
                         str(obj.get("category") or ""), "dolly", {"instruction": inst.strip(), "context": ctx.strip()})]


def from_alpaca(obj: dict, rid: str) -> list[Conversation]:
    inst, inp, out = _text(obj, "instruction"), _text(obj, "input", required=False), _text(obj, "output")
    user = f"{inst.strip()}\n\n{inp.strip()}" if inp.strip() else inst.strip()
    return [Conversation(rid, [{"role": "user", "content": user}, {"role": "assistant", "content": out.strip()}],
                         "", "alpaca", {"instruction": inst.strip(), "context": inp.strip()})]


def from_sharegpt(obj: dict, rid: str) -> list[Conversation]:
    turns = obj["conversations"]
    if not isinstance(turns, list) or not turns:
        raise Malformed("conversations", "expected a non-empty list of {from, value}")
    msgs = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or t.get("from") not in SHAREGPT_ROLES or not isinstance(t.get("value"), str):
            raise Malformed(f"conversations[{i}]", "expected {from: human|gpt|system, value: string}")
        msgs.append({"role": SHAREGPT_ROLES[t["from"]], "content": t["value"].strip()})
    return [Conversation(str(obj.get("id", rid)), _ending_on_assistant(msgs, "conversations"), "", "sharegpt")]


def _ending_on_assistant(msgs: list[dict[str, str]], where: str) -> list[dict[str, str]]:
    while msgs and msgs[-1]["role"] != "assistant":
        msgs = msgs[:-1]  # a last question with no answer teaches nothing
    if not any(m["role"] == "user" for m in msgs) or not msgs:
        raise Malformed(where, "no user turn answered by an assistant")
    return msgs


def _node_ok(node: Any, where: str) -> dict:
    if not isinstance(node, dict) or node.get("role") not in OASST_ROLES or not isinstance(node.get("text"), str):
        raise Malformed(where, "expected a message {role: prompter|assistant, text, replies}")
    return node


def _paths(node: dict, where: str, best: bool) -> Iterator[list[dict]]:
    """Root-to-leaf paths below `node` (deleted replies left out); with `best`, the rank-0 reply only."""
    replies = [r for r in node.get("replies") or [] if not (isinstance(r, dict) and r.get("deleted"))]
    replies = [_node_ok(r, f"{where}.replies[{i}]") for i, r in enumerate(replies)]
    if best and replies:
        replies = [min(replies, key=lambda r: (r.get("rank") is None, r.get("rank") or 0))]
    if not replies:
        yield [node]
    for r in replies:
        for p in _paths(r, f"{where}.replies", best):
            yield [node, *p]


def from_oasst_tree(obj: dict, rid: str, best: bool) -> list[Conversation]:
    root = _node_ok(obj["prompt"], "prompt")
    if root.get("deleted"):
        raise Malformed("prompt.deleted", "the tree's first message is deleted")
    out, seen = [], set()
    for k, path in enumerate(_paths(root, "prompt", best)):
        msgs = [{"role": OASST_ROLES[n["role"]], "content": n["text"].strip()} for n in path]
        try:
            msgs = _ending_on_assistant(msgs, "prompt")
        except Malformed:
            continue  # a branch with no answer yet
        key = json.dumps(msgs)
        if key not in seen:
            seen.add(key)
            tree = str(obj.get("message_tree_id", rid))
            out.append(Conversation(f"{tree}-{k}" if not best else tree, msgs, "", "oasst",
                                    {"lang": root.get("lang")}))
    if not out:
        raise Malformed("prompt.replies", "no assistant reply that is not deleted")
    return out


def _flat_to_trees(rows: list[tuple[int, dict]], path: Path) -> list[tuple[int, dict]]:
    """OASST's flat messages (message_id, parent_id, message_tree_id) as nested trees."""
    nodes = {}
    for line, r in rows:
        if not isinstance(r.get("message_id"), str):
            raise UserError("expected a string", path=path, line=line, field="message_id")
        nodes[r["message_id"]] = (line, dict(r, replies=[]))
    trees = []
    for mid, (line, n) in nodes.items():
        parent = n.get("parent_id")
        if parent is None:
            trees.append((line, {"message_tree_id": n.get("message_tree_id", mid), "prompt": n}))
        elif parent in nodes:
            nodes[parent][1]["replies"].append(n)
    return sorted(trees, key=lambda t: t[0])


def read_rows(path: Path) -> list[tuple[int | None, dict]]:
    raw = read_regular(path, missing="file not found")
    if raw.lstrip().startswith(b"["):
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"invalid JSON: {e}", path=path) from None
        return [(None, obj) for obj in data]
    return list(iter_jsonl(path))


def convert(obj: Any, rid: str, fmt: str | None = None, paths: str = "best") -> list[Conversation]:
    """One row as conversations; raises Malformed."""
    if not isinstance(obj, dict):
        raise Malformed("", f"expected an object, got {type(obj).__name__}")
    fmt = fmt or detect(obj)
    if fmt == "dolly":
        return from_dolly(obj, rid)
    if fmt == "alpaca":
        return from_alpaca(obj, rid)
    if fmt == "sharegpt":
        return from_sharegpt(obj, rid)
    if fmt == "oasst":
        return from_oasst_tree(obj, rid, best=paths == "best")
    raise Malformed("", "not a Dolly, OpenAssistant, ShareGPT or Alpaca row")


def file_format(objs: list[Any]) -> str | None:
    """The format of a file: its first row that has one (a later row missing a field is then that
    format's error, not an unknown row)."""
    return next((detect(o) for o in objs if isinstance(o, dict) and detect(o)), None)


def conversations(rows: list[tuple[int | None, Any]], path: Path, paths: str = "best",
                  rejects: list | None = None) -> list[Conversation]:
    """The conversations of a file's rows ((line, row); line None for the items of a JSON array)."""
    if rows and isinstance(rows[0][1], dict) and "parent_id" in rows[0][1]:
        rows = _flat_to_trees(rows, path)
    out: list[Conversation] = []
    fmt = file_format([o for _, o in rows])
    for i, (line, obj) in enumerate(rows):
        try:
            out += convert(obj, f"{path.stem}-{line if line is not None else i}", fmt, paths=paths)
        except Malformed as e:
            if rejects is not None:
                rejects.append((line, e.field, e.reason))
                continue
            where = e.field if line is not None else f"[{i}]" + (f".{e.field}" if e.field else "")
            raise UserError(e.reason, path=path, line=line, field=where or None) from None
    return out


def read_conversations(path: str | Path, paths: str = "best", rejects: list | None = None) -> list[Conversation]:
    """Every conversation of a file of one of FORMATS (detected from its first row)."""
    path = Path(path)
    return conversations(read_rows(path), path, paths, rejects)
