"""Fine-tuning data: where DATA points (a run dir, an export dir or one file), reading its rows, and
converting them to TRL's conversational prompt-completion format (the prompt is masked in the loss).

Accepted rows: prompt-completion (conversational, or plain strings), chat `messages` (the last,
assistant, message is the completion) and Alpaca instruction/input/output (one user turn, as `export`
writes it: `io.formats.user_prompt`), in JSONL; Alpaca also as a JSON array; and the human datasets of
io/human.py (Dolly-15k, ShareGPT, OpenAssistant trees), multi-turn conversations kept whole.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..io.errors import UserError
from ..io.formats import user_prompt
from ..io.jsonl import iter_jsonl

ROLES = ("system", "user", "assistant", "tool")

@dataclass
class DataFiles:
    train: Path
    eval: Path | None
    fmt: str  # prompt_completion | messages | alpaca | auto


_EXPORT_ORDER = (("prompt_completion", "{split}.prompt_completion.jsonl"),
                 ("messages", "{split}.messages.jsonl"),
                 ("alpaca", "{split}.alpaca.json"))


def _export_dir(p: Path) -> Path | None:
    """A run dir (has export/) or an export dir (has train.* files)."""
    if (p / "export").is_dir():
        return p / "export"
    if any((p / name.format(split=s)).is_file() for _, name in _EXPORT_ORDER for s in ("train", "eval")):
        return p
    return None


def _pick_in_export(d: Path, split: str) -> tuple[Path, str] | None:
    for fmt, name in _EXPORT_ORDER:
        f = d / name.format(split=split)
        if f.is_file():
            return f, fmt
    return None


def resolve_data(data: str | Path, eval_data: str | Path | None = None, no_eval: bool = False) -> DataFiles:
    """DATA: a run dir (runs/x -> runs/x/export/), an export dir, or one file. A file named train.* gets its
    eval.* sibling as the eval split when there is one. eval_data overrides the eval split."""
    p = Path(data)
    if not p.exists():
        raise UserError("data not found (expected a run directory, an export directory or a JSONL/JSON file)",
                        path=p)
    if p.is_dir():
        d = _export_dir(p)
        if d is None:
            raise UserError("no exported data here: expected export/ or train.prompt_completion.jsonl "
                            "(run `selfinstruct generate` with the export stage first)", path=p)
        found = _pick_in_export(d, "train")
        if found is None:
            raise UserError("no train.prompt_completion.jsonl, train.messages.jsonl or train.alpaca.json", path=d)
        train, fmt = found
    else:
        train, fmt = p, "auto"
    return DataFiles(train=train, eval=eval_split(train, eval_data, no_eval), fmt=fmt)


def eval_split(train: Path, eval_data: str | Path | None = None, no_eval: bool = False) -> Path | None:
    """The eval file that goes with a train file: `eval_data` if given, else a train.* file's eval.*
    sibling when there is one; None with `no_eval`."""
    if no_eval:
        return None
    if eval_data is not None:
        if not Path(eval_data).is_file():
            raise UserError("eval data file not found", path=eval_data)
        return Path(eval_data)
    sib = train.with_name("eval." + train.name[len("train."):]) if train.name.startswith("train.") else None
    return sib if sib is not None and sib.is_file() else None


def resolve_split_file(data: str | Path, train_name: str, missing: str, eval_data: str | Path | None = None,
                       no_eval: bool = False) -> tuple[Path, Path | None]:
    """(train, eval) files for a command that reads one export format (`dpo`: preference, `grpo`:
    constraints): DATA is a run dir (RUN/export/TRAIN_NAME), an export dir, or one JSONL file (a train.*
    file brings its eval.* sibling). `missing` says what to do when a folder lacks the file."""
    p = Path(data)
    if not p.exists():
        raise UserError("data not found (expected a run directory, an export directory or a JSONL file)", path=p)
    if p.is_dir():
        d = p / "export" if (p / "export").is_dir() else p
        train = d / train_name
        if not train.is_file():
            raise UserError(f"no {train_name} here: {missing}", path=d)
    else:
        train = p
    return train, eval_split(train, eval_data, no_eval)


def resolve_eval_data(data: str | Path) -> Path:
    """For `evaluate`: a run/export dir means its eval split; a file is used as is."""
    p = Path(data)
    if not p.exists():
        raise UserError("eval data not found", path=p)
    if p.is_dir():
        d = _export_dir(p)
        found = _pick_in_export(d, "eval") if d is not None else None
        if found is None:
            raise UserError("no eval.prompt_completion.jsonl, eval.messages.jsonl or eval.alpaca.json here", path=p)
        return found[0]
    return p


def check_messages(value: Any, where: Callable[[str, str], None], name: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        where(name, "expected a non-empty list of {role, content} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            where(f"{name}[{i}]", f"expected a {{role, content}} object, got {type(m).__name__}")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            where(f"{name}[{i}].role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            where(f"{name}[{i}].content", f"expected a string, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def to_prompt_completion(obj: dict[str, Any], where: Callable[[str, str], None], default_id: str) -> dict[str, Any]:
    """One row of any supported format -> {"id", "prompt": [messages], "completion": [assistant message]}."""
    rid = obj.get("id", default_id)
    rid = str(rid) if rid is not None else default_id
    if "prompt" in obj and "completion" in obj:
        prompt, completion = obj["prompt"], obj["completion"]
        if isinstance(prompt, str):  # standard (text) prompt-completion: render with the chat template too
            prompt = [{"role": "user", "content": prompt}]
        if isinstance(completion, str):
            completion = [{"role": "assistant", "content": completion}]
        prompt = check_messages(prompt, where, "prompt")
        completion = check_messages(completion, where, "completion")
        if completion[-1]["role"] != "assistant":
            where("completion", "the last completion message must have role 'assistant'")
        if prompt[-1]["role"] == "assistant":
            where("prompt", "the prompt must not end with an assistant message")
        return {"id": rid, "prompt": prompt, "completion": completion}
    if "messages" in obj:
        msgs = check_messages(obj["messages"], where, "messages")
        if msgs[-1]["role"] != "assistant":
            where("messages", "the last message must have role 'assistant'")
        if len(msgs) < 2:
            where("messages", "need at least one message before the assistant answer")
        return {"id": rid, "prompt": msgs[:-1], "completion": msgs[-1:]}
    if "instruction" in obj and "output" in obj:
        inst, inp, out = obj["instruction"], obj.get("input") or "", obj["output"]
        for k, v in (("instruction", inst), ("input", inp), ("output", out)):
            if not isinstance(v, str):
                where(k, f"expected a string, got {type(v).__name__}")
        if not inst.strip():
            where("instruction", "is empty")
        return {"id": rid, "prompt": [{"role": "user", "content": user_prompt(inst, inp)}],
                "completion": [{"role": "assistant", "content": out}]}
    where("", "unrecognised row: expected prompt+completion, messages, or instruction+output (Alpaca) fields")
    raise AssertionError  # unreachable


def load_examples(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (prompt-completion, messages or Alpaca rows) or of a JSON array (Alpaca JSON),
    as prompt-completion dicts. Bad rows raise UserError naming file:line (JSONL) or the item index (JSON)."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            items = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise UserError("file not found", path=path) from None
        except IsADirectoryError:
            raise UserError("is a directory, expected a JSON file", path=path) from None
        except UnicodeDecodeError as e:
            raise UserError(f"not valid UTF-8 (byte {e.start})", path=path) from None
        except json.JSONDecodeError as e:
            raise UserError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
        if not isinstance(items, list):
            raise UserError(f"expected a JSON array of examples (Alpaca format), got {type(items).__name__}",
                            path=path)
        return _examples([(None, obj) for obj in items], path)
    return _examples(list(iter_jsonl(path)), path)


def _examples(rows: list[tuple[int | None, Any]], path: Path) -> list[dict[str, Any]]:
    """A file's rows as examples: a human dataset's conversations (io/human.py: the last assistant turn is
    the completion, the turns before it, assistant ones too, the prompt), else one example per row."""
    from ..io.human import CONVERSATIONS, conversations, file_format
    if file_format([obj for _, obj in rows]) in CONVERSATIONS:
        return [{"id": c.id, "prompt": c.messages[:-1], "completion": c.messages[-1:]}
                for c in conversations(rows, path)]
    out = []
    for i, (line, obj) in enumerate(rows):
        def where(f, msg, line=line, i=i):
            if line is None:  # an item of a JSON array
                raise UserError(msg, path=path, field=f"[{i}]" + (f".{f}" if f else ""))
            raise UserError(msg, path=path, line=line, field=f or None)
        if not isinstance(obj, dict):
            where("", f"expected an object, got {type(obj).__name__}")
        out.append(to_prompt_completion(obj, where, f"{path.stem}-{line if line is not None else i}"))
    return out


def prompt_completion_ids(tokenizer, prompt: list[dict], completion: list[dict]) -> tuple[list[int], int]:
    """Token ids of prompt+completion rendered with the chat template, and the number of leading prompt
    tokens (masked in the loss). Same rule as TRL's SFTTrainer: the completion starts where the tokenized
    prompt (with the generation prompt) and the tokenized prompt+completion diverge."""
    p = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    full = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"]
    n = 0
    for a, b in zip(p, full):
        if a != b:
            break
        n += 1
    return list(full), n


def conversation_ids(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation rendered with the chat template, and its loss mask: 1 on every
    assistant turn (its text and the template's end-of-turn tokens), 0 on the rest. A turn's tokens lie
    between the rendering of the conversation before it (with the generation prompt) and through it, so
    no `{% generation %}` markers are needed in the template; a template that renders earlier turns
    differently once later ones follow (one that drops past reasoning, say) cannot be masked this way
    and is refused."""
    def render(msgs, prompt=False):
        return list(tokenizer.apply_chat_template(msgs, tokenize=True, add_generation_prompt=prompt,
                                                  return_dict=True)["input_ids"])
    full = render(messages)
    mask = [0] * len(full)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before, through = render(messages[:i], prompt=True), render(messages[: i + 1])
        if full[:len(before)] != before or full[:len(through)] != through:
            raise UserError("the model's chat template renders a conversation's earlier turns differently once "
                            "later turns follow, so its assistant turns cannot be masked: train on single-turn "
                            "data, or set finetune.chat_template")
        mask[len(before):len(through)] = [1] * (len(through) - len(before))
    return full, mask
