"""Secrets never reach a file or the terminal: API keys and credentials in URLs are replaced by ***
in everything a run writes or prints (run.json, rejects, error messages)."""
from __future__ import annotations

import base64
import re
from typing import Any, Iterable
from urllib.parse import urlsplit

# up to the last @ before the path: a password may hold an unescaped @ (urllib splits at the last one)
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s]*@")
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")  # a server echoing Authorization
# The scheme is case-insensitive (`authorization: basic ...`); in another case, only a token that decodes
# to user:password, so that "basic" in a prompt (run.json holds the config) is left alone.
_BASIC_ANY_CASE = re.compile(r"\b(basic)\s+([A-Za-z0-9+/]+={0,2})(?![A-Za-z0-9._~+/=-])", re.IGNORECASE)


def _basic(m: re.Match) -> str:
    try:
        credentials = base64.b64decode(m.group(2), validate=True)
    except ValueError:
        return m.group(0)
    return f"{m.group(1)} ***" if b":" in credentials else m.group(0)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    text = _USERINFO.sub(r"\1***@", text)
    text = _AUTH_HEADER.sub(r"\1 ***", text)
    text = _BASIC_ANY_CASE.sub(_basic, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def has_credentials(url: str) -> bool:
    """Whether a URL carries user:password@ (sent as Basic auth, and seen in the process list)."""
    return "@" in urlsplit(url.strip()).netloc


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
