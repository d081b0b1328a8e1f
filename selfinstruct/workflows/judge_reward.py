"""The judge term of `selfinstruct grpo` (`judge_weight`): a judge model on an OpenAI-compatible server
scores each sampled answer with one of the `judge` stage's rubrics, read only from the rubric's place
(`judgment.parse_judgment`), and the score is scaled to [0, 1]. It lives here, above `train/`, because it
drives a generation backend and the judge stage's prompts; `train/grpo.py` takes it as a plain callable.

A failed request or a judgment without a score gives None: TRL then leaves the judge out of that
answer's reward (the constraint share still counts), so a server outage never becomes a made-up score."""
from __future__ import annotations

from typing import Any, Callable

from ..backends.base import Request
from ..backends.openai_server import OpenAIBackend, OpenAIOptions
from ..fence import fence_tag
from ..generate.prompts import RUBRICS, judge_prompt
from ..judgment import parse_judgment

JUDGE_MAX_TOKENS = 64


def user_text(prompt: Any) -> str:
    """The last user message of a conversational prompt (or the prompt itself)."""
    if isinstance(prompt, str):
        return prompt
    return next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")


def server_judge(model: str, urls: tuple[str, ...], rubric: str = "alpagasus", *,
                 seed: int = 0) -> tuple[Callable[[list, list[str]], list[float | None]], Callable[[], None]]:
    """(score, close): score(prompts, answers) -> a score in [0, 1] or None per answer."""
    backend = OpenAIBackend(model, OpenAIOptions(base_urls=list(urls)))
    r = RUBRICS[rubric]

    def score(prompts: list, answers: list[str]) -> list[float | None]:
        asked, requests = [], []
        for i, (p, a) in enumerate(zip(prompts, answers)):
            tag, instruction = fence_tag(seed, "grpo", i, a), user_text(p)
            if tag in instruction or tag in a:  # a forged fence is never judged
                continue
            asked.append(i)
            requests.append(Request(judge_prompt(r.template, instruction, "", a, tag), max_tokens=JUDGE_MAX_TOKENS,
                                    temperature=0.0, seed=0))
        out: list[float | None] = [None] * len(answers)
        for i, c in zip(asked, backend.generate(requests) if requests else []):
            value = None if c.error else parse_judgment(c.text, r.low, r.high, r.place)[0]
            out[i] = None if value is None else (value - r.low) / (r.high - r.low)
        return out

    return score, backend.close
