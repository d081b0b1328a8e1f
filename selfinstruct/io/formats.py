"""The fine-tuning data formats that `export` writes and `finetune` reads: chat `messages`, TRL's
conversational prompt-completion (the prompt is masked in the loss) and Alpaca's
instruction/input/output. One user turn is the instruction, then a blank line and the input."""
from __future__ import annotations

from typing import Any, Iterator

from .records import Record

FORMATS = ("messages", "prompt_completion", "alpaca")


def user_prompt(instruction: str, inp: str) -> str:
    return f"{instruction.strip()}\n\n{inp.strip()}" if inp.strip() else instruction.strip()


def prompt_messages(instruction: str, inp: str, system: str | None) -> list[dict[str, str]]:
    """The prompt of an example as chat messages: the system message, if any, then the user turn."""
    sys_msgs = [{"role": "system", "content": system}] if system else []
    return sys_msgs + [{"role": "user", "content": user_prompt(instruction, inp)}]


def to_formats(rec: Record, system: str | None) -> Iterator[dict[str, Any]]:
    """One example per instance, in every format."""
    for inst in rec.instances or []:
        prompt = prompt_messages(rec.instruction, inst.input, system)
        yield {
            "messages": {"id": rec.id, "messages": prompt + [{"role": "assistant", "content": inst.output}]},
            "prompt_completion": {"id": rec.id, "prompt": prompt,
                                  "completion": [{"role": "assistant", "content": inst.output}]},
            "alpaca": {"instruction": rec.instruction, "input": inst.input, "output": inst.output},
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
