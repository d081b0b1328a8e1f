"""Any OpenAI-compatible server (for example `vllm serve MODEL`): one or several base URLs, bounded
concurrency (a sliding window of in-flight requests), timeouts, retries with exponential backoff on
connection errors, 429 and 5xx answers (honouring Retry-After), a wall-clock deadline per attempt and a
cap on the answer's size. The API key comes from the environment only, and it and any credentials in
the URLs are redacted from every error text."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import random
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from ..io.console import terminal
from ..io.errors import UserError
from ..io.secrets import has_credentials, redact
from ..io.settings import setting
from .registry import register_backend
from .base import Backend, Completion, Request


@dataclass
class OpenAIOptions:
    """Any OpenAI-compatible server (`vllm serve`). The API key is read from the env var named here."""
    base_urls: list[str] = setting(factory=lambda: ["http://127.0.0.1:8000/v1"],
                                   help="server URL(s), requests are spread over them")
    api_key_env: str = setting("OPENAI_API_KEY", help="environment variable that holds the API key")
    max_concurrency: int = setting(32, min=1, max=65536, help="requests in flight at once (all URLs together)")
    timeout_s: float = setting(120.0, min=0.0, max=86400.0, min_exclusive=True, help="timeout per request, seconds")
    # the pause before retry n is backoff_s * 2**n (a float: it overflows past n ~ 1000), then capped at
    # MAX_WAIT_S = 60 s, so a longer first pause would mean nothing
    max_retries: int = setting(6, min=0, max=100, help="retries of a failed request (connection errors, 5xx, 429)")
    backoff_s: float = setting(0.5, min=0.0, max=60.0, help="first retry delay, doubled each retry")
    max_response_bytes: int = setting(8 << 20, min=1024, max=1 << 30,
                                      help="a larger answer is a failed request (buffered: this sizes memory)")

    def check(self, err) -> None:
        if not self.base_urls:  # requests are spread over the URLs: none would leave them nowhere to go
            err("base_urls", "must list at least one server URL")


def refuse_url_credentials(urls, flag: str, key_env: str = OpenAIOptions.api_key_env) -> None:
    """user:password@ in a URL flag (--base-url): the command line is seen in the process list and the
    shell's history, and the server would get it as Basic auth. The key goes in the environment."""
    if any(has_credentials(u) for u in urls):
        raise UserError(f"{flag}: credentials in the URL (user:password@) are refused, the command line is seen in "
                        f"the process list and the shell's history; put the API key in the environment variable "
                        f"{key_env} instead")


RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_WAIT_S = 60.0  # longest pause between attempts, Retry-After included


class ResponseTooLarge(Exception):
    pass


def retry_after(value: str | None) -> float:
    """Seconds a 429/503 answer asks to wait (the header's delta-seconds form; 0 if absent or a date)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


@register_backend("openai", OpenAIOptions)
class OpenAIBackend(Backend):
    def __init__(self, model: str, opts: OpenAIOptions, seed: int = 0, served_model: str | None = None):
        self.opts = opts
        self.warn = lambda msg: print(f"warning: {msg}", file=terminal(), flush=True)
        self.model = model
        self.served_model = served_model
        self.base_urls = [u.rstrip("/") for u in opts.base_urls]
        self._api_key = os.environ.get(opts.api_key_env) or None
        self._rr = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = None
        self._sem: asyncio.Semaphore | None = None
        self._model_task = None
        self._ids = itertools.count()
        self._live: dict[int, Any] = {}
        self._results: queue.SimpleQueue = queue.SimpleQueue()

    def describe(self):
        return {"backend": self.kind, "model": self.model, "base_urls": [redact(u) for u in self.base_urls]}

    def __repr__(self):  # never show the key
        return f"OpenAIBackend(model={self.model!r}, base_urls={[redact(u) for u in self.base_urls]!r})"

    def _safe(self, text: str) -> str:
        """Error text as it may be written or printed: without the key or URL credentials (a server
        may echo the Authorization header back)."""
        return redact(text, [self._api_key or ""])

    async def _served_name(self, client) -> str:
        if self.served_model:
            return self.served_model
        # vLLM serves a model under the name it was started with; use it when ours is a local path.
        for _ in range(self.opts.max_retries + 1):
            url = self.base_urls[next(self._rr) % len(self.base_urls)]
            try:
                r = await asyncio.wait_for(client.get(f"{url}/models", headers=self._headers()), self.opts.timeout_s)
                if r.status_code == 200:
                    ids = [m["id"] for m in r.json().get("data", [])]
                    self.served_model = self.model if self.model in ids or not ids else ids[0]
                    if ids and self.model not in ids:
                        self.warn(f"the server does not list the model {self.model!r}; using {ids[0]!r} "
                                  f"(it serves: {', '.join(ids[:5])})")
                    return self.served_model
            except (httpx.HTTPError, asyncio.TimeoutError, ValueError, KeyError, TypeError):
                pass  # not answering yet: the requests themselves retry and report
            await asyncio.sleep(self.opts.backoff_s)
        return self.model  # not found out (server down?): not remembered, the next request asks again

    def _headers(self):
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def _post(self, client, url: str, body: dict) -> tuple[int, dict[str, str], bytes]:
        """One attempt: status, headers and at most `max_response_bytes` of the body, all within
        `timeout_s` of wall-clock time (httpx's own timeouts are per read: a server sending one byte at
        a time would never time out)."""
        async def attempt():
            async with client.stream("POST", url, json=body, headers=self._headers()) as r:
                data = bytearray()
                async for chunk in r.aiter_bytes():
                    data += chunk
                    if len(data) > self.opts.max_response_bytes:
                        raise ResponseTooLarge(f"response larger than {self.opts.max_response_bytes} bytes")
                return r.status_code, dict(r.headers), bytes(data)
        return await asyncio.wait_for(attempt(), self.opts.timeout_s)

    @staticmethod
    def _parse(data: dict, chat: bool) -> Completion:
        """The completion of choice 0 (by its `index`: servers need not list choices in order)."""
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if not choices:
            return Completion(text="", error="no choices in the response")
        choice = choices[0]
        text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
        if not isinstance(text, str):
            return Completion(text="", error=f"the response has no text (got {type(text).__name__})")
        usage = data.get("usage") or {}
        return Completion(text=text, finish_reason=choice.get("finish_reason"),
                          prompt_tokens=usage.get("prompt_tokens") or 0,
                          completion_tokens=usage.get("completion_tokens") or 0)

    async def _one(self, client, sem, req: Request, model: str) -> Completion:
        chat = not isinstance(req.prompt, str)
        body = {"model": model, "max_tokens": req.max_tokens, "temperature": req.temperature,
                "top_p": req.top_p, "frequency_penalty": req.frequency_penalty,
                "presence_penalty": req.presence_penalty}
        if req.stop:
            body["stop"] = req.stop
        if req.seed is not None:
            body["seed"] = req.seed
        if req.choices:  # the installed vLLM server reads `structured_outputs` (older ones: `guided_choice`)
            body["structured_outputs"] = {"choice": list(req.choices)}
        body["messages" if chat else "prompt"] = req.prompt
        path = "/chat/completions" if chat else "/completions"
        last_err = "unknown error"
        async with sem:
            for attempt in range(self.opts.max_retries + 1):
                url = self.base_urls[next(self._rr) % len(self.base_urls)] + path
                wait = self.opts.backoff_s * (2 ** attempt) * (0.5 + random.random())
                try:
                    status, headers, raw = await self._post(client, url, body)
                    if status == 200:
                        c = self._parse(json.loads(raw), chat)
                        if c.error is None:
                            return c
                        last_err = c.error
                    else:
                        last_err = f"HTTP {status}: {raw[:200].decode(errors='replace')}"
                        if status not in RETRY_STATUS:
                            return Completion(text="", error=self._safe(last_err))
                        wait = max(wait, retry_after(headers.get("retry-after")))
                except ResponseTooLarge as e:
                    return Completion(text="", error=str(e))
                except asyncio.TimeoutError:
                    last_err = f"no complete answer within timeout_s={self.opts.timeout_s}"
                except (httpx.HTTPError, OSError, ValueError) as e:  # connection refused/reset, bad JSON
                    last_err = f"{type(e).__name__}: {e}"[:300]
                await asyncio.sleep(min(wait, MAX_WAIT_S))
        return Completion(text="", error=self._safe(f"failed after {self.opts.max_retries + 1} attempts: {last_err}"))

    async def _call(self, req: Request) -> Completion:
        if self._client is None:  # one client and one window of in-flight requests for all requests
            self._sem = asyncio.Semaphore(self.opts.max_concurrency)
            self._client = httpx.AsyncClient(timeout=self.opts.timeout_s,
                                             limits=httpx.Limits(max_connections=self.opts.max_concurrency))
        if self._model_task is None or (self._model_task.done() and self.served_model is None):
            self._model_task = asyncio.ensure_future(self._served_name(self._client))
        model = await asyncio.shield(self._model_task)
        return await self._one(self._client, self._sem, req, model)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="selfinstruct-openai", daemon=True).start()
        return self._loop

    # Each request is a task on a background event loop; finished ones land in a queue that `poll` drains.
    def start(self, request: Request) -> int:
        h = next(self._ids)
        fut = asyncio.run_coroutine_threadsafe(self._call(request), self._event_loop())
        self._live[h] = fut

        def done(f, h=h):
            if not f.cancelled():
                try:
                    c = f.result()
                except Exception as e:  # a bug, not a server error: report it on the record
                    c = Completion(text="", error=self._safe(f"{type(e).__name__}: {e}"[:300]))
                self._results.put((h, c))

        fut.add_done_callback(done)
        return h

    def poll(self) -> list[tuple[int, Completion]]:
        out = []
        while not out and self._live:
            got = [self._results.get()]
            while not self._results.empty():
                got.append(self._results.get_nowait())
            out = [(h, c) for h, c in got if self._live.pop(h, None) is not None]  # else: aborted
        return out

    def abort(self, handles) -> None:
        for h in handles:
            fut = self._live.pop(h, None)
            if fut is not None:
                fut.cancel()

    def capacity(self, request: Request) -> int:
        return self.opts.max_concurrency

    async def _shutdown(self) -> None:
        """Cancel whatever still runs (aborted requests, the model lookup), let it unwind, then close
        the client: no request may start on a closed client."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def close(self) -> None:
        self.abort(list(self._live))
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop, self._client = None, None
