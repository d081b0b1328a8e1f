"""Preference data for `selfinstruct dpo`: where DATA points (a run dir, its export dir, or one file) and
its rows, checked, in TRL's conversational preference format (`prompt`, `chosen`, `rejected` as
message lists, the answers one assistant message each), as the `export` stage writes them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.errors import UserError
from ..io.formats import PREFERENCE_FILE
from ..io.jsonl import iter_jsonl
from .data import check_messages, resolve_split_file


@dataclass
class PairFiles:
    train: Path
    eval: Path | None


def resolve_pairs(data: str | Path, eval_data: str | Path | None = None, no_eval: bool = False) -> PairFiles:
    """DATA: a run dir (RUN/export/train.preference.jsonl), an export dir, or one JSONL file (a train.* file
    brings its eval.* sibling). `eval_data` overrides the eval split; `no_eval` drops it."""
    return PairFiles(*resolve_split_file(data, PREFERENCE_FILE.format(split="train"),
                                         "generate preference pairs first (pipelines/preference.yaml, its export "
                                         "writes them)", eval_data, no_eval))


def load_pairs(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a preference JSONL file as {"id", "prompt", "chosen", "rejected"}; a bad row raises a
    UserError naming file:line and the field."""
    path = Path(path)
    rows = []
    for line, obj in iter_jsonl(path):
        def where(f, msg, line=line):
            raise UserError(msg, path=path, line=line, field=f or None)
        for key in ("prompt", "chosen", "rejected"):
            if key not in obj:
                where(key, "missing: a preference row has prompt, chosen and rejected message lists")
        prompt = check_messages(obj["prompt"], where, "prompt")
        if prompt[-1]["role"] == "assistant":
            where("prompt", "the prompt must not end with an assistant message")
        answers = {}
        for key in ("chosen", "rejected"):
            answers[key] = check_messages(obj[key], where, key)
            if answers[key][-1]["role"] != "assistant":
                where(key, "the last message must have role 'assistant'")
        if answers["chosen"] == answers["rejected"]:
            where("rejected", "the same answer as chosen: nothing to prefer")
        rows.append({"id": str(obj.get("id", f"{path.stem}-{line}")), "prompt": prompt, **answers})
    return rows
