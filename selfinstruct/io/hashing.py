"""Content hashes of settings and records: the stage hashes, the config hash a dataset card quotes."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any) -> str:
    """sha256 of the object as sorted-key JSON (what is not JSON is hashed as its str)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def in_share(key: str, share: float) -> bool:
    """Whether `key` falls in a seeded `share` of all keys (its sha256 read as a number in [0, 1]): a
    held-out split that is the same on every run and does not depend on what else is split."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share
