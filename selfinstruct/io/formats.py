"""The fine-tuning data formats that `export` writes and `finetune` reads: chat `messages`, TRL's
conversational prompt-completion (the prompt is masked in the loss) and Alpaca's
instruction/input/output. One user turn is the instruction, then a blank line and the input."""
from __future__ import annotations

from typing import Any, Iterator

from .records import Record

FORMATS = ("messages", "prompt_completion", "alpaca")
# the formats of the human datasets (io/human.py), written on request (not by default): ShareGPT's
# `conversations` and OpenAssistant's message tree (each example a one-path tree, its answer ranked 0)
CHAT_FORMATS = ("sharegpt", "oasst")
SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt"}


def user_prompt(instruction: str, inp: str) -> str:
    return f"{instruction.strip()}\n\n{inp.strip()}" if inp.strip() else instruction.strip()


def prompt_messages(instruction: str, inp: str, system: str | None) -> list[dict[str, str]]:
    """The prompt of an example as chat messages: the system message, if any, then the user turn."""
    sys_msgs = [{"role": "system", "content": system}] if system else []
    return sys_msgs + [{"role": "user", "content": user_prompt(instruction, inp)}]


def to_sharegpt(rid: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"id": rid, "conversations": [{"from": SHAREGPT_FROM[m["role"]], "value": m["content"]}
                                         for m in messages]}


def to_oasst(rid: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    """A conversation as OpenAssistant's nested tree (one path; a system message is kept as the tree's
    `system` field, which OASST has no message for)."""
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    turns = [m for m in messages if m["role"] != "system"]
    node: dict[str, Any] | None = None
    for k in range(len(turns) - 1, -1, -1):
        m = turns[k]
        node = {"message_id": f"{rid}-{k}", "text": m["content"], "role": "prompter" if m["role"] == "user" else
                "assistant", **({"rank": 0} if m["role"] == "assistant" else {}), "replies": [node] if node else []}
    return {"message_tree_id": rid, **({"system": system} if system else {}), "prompt": node}


def to_formats(rec: Record, system: str | None) -> Iterator[dict[str, Any]]:
    """One example per instance, in every format."""
    for inst in rec.instances or []:
        prompt = prompt_messages(rec.instruction, inst.input, system)
        messages = prompt + [{"role": "assistant", "content": inst.output}]
        yield {
            "messages": {"id": rec.id, "messages": messages},
            "prompt_completion": {"id": rec.id, "prompt": prompt,
                                  "completion": [{"role": "assistant", "content": inst.output}]},
            "alpaca": {"instruction": rec.instruction, "input": inst.input, "output": inst.output},
            "sharegpt": to_sharegpt(rec.id, messages),
            "oasst": to_oasst(rec.id, messages),
        }


PREFERENCE = "preference"  # the export format of preference pairs (not one of FORMATS: records need a pair)
PREFERENCE_FILE = "{split}.preference.jsonl"


def to_preference(prompt: list[dict[str, str]], chosen: str, rejected: str, side: dict[str, Any]) -> dict[str, Any]:
    """One row of TRL's conversational preference format: `prompt`, `chosen` and `rejected` as message
    lists (the answers one assistant message each), then side fields (id, scores, provenance)."""
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], **side}


CONSTRAINT_PROMPTS = "constraints"  # the export format of RLVR prompts (`grpo`): constrained records only
CONSTRAINT_PROMPTS_FILE = "{split}.constraints.jsonl"


def to_constraint_prompt(rec: Record, system: str | None) -> dict[str, Any] | None:
    """A constrained record's prompt and its constraints (`{id, kwargs}`, as `constrain` drew them), the
    row `grpo` rewards answers to; None for a record without constraints. The prompt is the one its SFT
    example has (the first instance's input), so the two files split alike."""
    items = (rec.extra.get("constraints") or {}).get("items")
    if not items or not rec.instances:
        return None
    return {"id": rec.id, "prompt": prompt_messages(rec.instruction, rec.instances[0].input, system),
            "constraints": [{"id": c["id"], "kwargs": dict(c.get("kwargs") or {})} for c in items]}
