from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Hashable


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
    # Structured output: the answer must be exactly one of these strings (vLLM's guided choice; a
    # backend without structured outputs ignores it, so callers still parse the text they get back).
    choices: list[str] | None = None

    @classmethod
    def from_sampling(cls, prompt, sampling, seed: int | None = None, stop: list[str] | None = None,
                      choices: list[str] | None = None) -> "Request":
        return cls(prompt=prompt, max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                   top_p=sampling.top_p, stop=list(sampling.stop) + list(stop or []), seed=seed,
                   frequency_penalty=sampling.frequency_penalty, presence_penalty=sampling.presence_penalty,
                   choices=list(choices) if choices else None)


_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """Text a model or server returned, made writable: a lone surrogate (valid JSON, invalid UTF-8, as
    some servers send for a token that splits an emoji) becomes U+FFFD instead of failing every write."""
    return _SURROGATE.sub("\ufffd", text)


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None  # "stop" | "length" | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # set when the request failed for good (after retries): never final data

    def __post_init__(self):
        self.text = safe_text(self.text)
        if self.error is not None:
            self.error = safe_text(self.error)


class Backend:
    """Generates completions. Three primitives, which the stages drive through `scheduler.Window`:

    - `start(request)` queues one request and returns a handle at once;
    - `poll()` blocks until at least one started request has finished and returns every finished
      `(handle, Completion)` not returned before, in any order ([] when nothing is in flight);
    - `abort(handles)` drops requests that are no longer wanted.

    `capacity(request)` says about how many such requests the backend runs at once, so that callers
    keep that many in flight. `submit`/`wait`/`cancel`/`generate` are batch conveniences on top."""
    model: str = ""
    kind: str = ""

    def start(self, request: Request) -> Hashable:
        raise NotImplementedError

    def poll(self) -> list[tuple[Hashable, Completion]]:
        raise NotImplementedError

    def abort(self, handles: list[Hashable]) -> None:
        raise NotImplementedError

    def capacity(self, request: Request) -> int:
        return 32

    # batch conveniences -------------------------------------------------------------------------
    def _finished(self) -> dict[Hashable, Completion]:
        if "_done" not in self.__dict__:
            self._done = {}
        return self._done

    def submit(self, requests: list[Request]) -> list[Hashable]:
        return [self.start(r) for r in requests]

    def wait(self, ticket: list[Hashable]) -> list[Completion]:
        done = self._finished()
        pending = {h for h in ticket if h not in done}
        while pending:
            out = self.poll()
            if not out:
                raise RuntimeError(f"{self.kind} backend lost {len(pending)} request(s)")
            for h, c in out:
                done[h] = c
                pending.discard(h)
        return [done.pop(h) for h in ticket]

    def cancel(self, ticket: list[Hashable]) -> None:
        done = self._finished()
        live = [h for h in ticket if h not in done]
        if live:
            self.abort(live)
        for h in ticket:
            done.pop(h, None)

    def generate(self, requests: list[Request], progress=None) -> list[Completion]:
        result = self.wait(self.submit(requests)) if requests else []
        if progress:
            progress(len(result))
        return result

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model}

    def close(self) -> None:
        pass
