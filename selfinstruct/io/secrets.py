"""Secrets never reach a file or the terminal: API keys and credentials in URLs are replaced by ***
in everything a run writes or prints (run.json, rejects, error messages)."""
from __future__ import annotations

import re
from typing import Any, Iterable

_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")  # a server echoing Authorization


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    text = _USERINFO.sub(r"\1***@", text)
    text = _AUTH_HEADER.sub(r"\1 ***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def redact_all(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """`redact` applied to every string of a JSON-like structure."""
    secrets = tuple(secrets)
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, dict):
        return {k: redact_all(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_all(v, secrets) for v in obj]
    return obj
