"""The one chat renderer: messages -> the token ids of the model's chat template, with the generation
prompt. Engines are given these ids, never the rendered text: text would be tokenized again with the
tokenizer's special tokens, and templates that already start with BOS (Llama 3, Gemma, Mistral) would
get it twice. Every path that sends chat prompts to a model (generation, evaluation) uses this."""
from __future__ import annotations

from typing import Any

# Part of every model stage's hash: how prompts reach the engine.
CHAT_RENDERER = "template-token-ids-v2"


def chat_token_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)
    return list(out["input_ids"])
