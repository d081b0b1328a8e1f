from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    """One generation request. `prompt` is raw text (completion format) or a list of chat messages."""
    prompt: str | list[dict[str, str]]
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    @classmethod
    def from_sampling(cls, prompt, sampling, seed: int | None = None, stop: list[str] | None = None) -> "Request":
        return cls(prompt=prompt, max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                   top_p=sampling.top_p, stop=list(sampling.stop) + list(stop or []), seed=seed,
                   frequency_penalty=sampling.frequency_penalty, presence_penalty=sampling.presence_penalty)


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None  # "stop" | "length" | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # set when the request failed for good (after retries)


class Backend:
    """Generates completions for a batch of requests, in order.

    `submit` queues a batch and returns at once; `wait` returns its completions (in order). Stages
    submit the next batch before waiting for the current one, so the engine always has work queued
    while a finished batch is parsed, filtered and committed. The default runs a batch on `wait`."""
    model: str = ""
    kind: str = ""

    def generate(self, requests: list[Request], progress=None) -> list[Completion]:
        raise NotImplementedError

    def submit(self, requests: list[Request]) -> Any:
        return list(requests)

    def wait(self, ticket: Any) -> list[Completion]:
        return self.generate(ticket)

    def cancel(self, ticket: Any) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model}

    def close(self) -> None:
        pass
