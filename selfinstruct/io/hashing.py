"""Content hashes of settings and records: the stage hashes, the config hash a dataset card quotes."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any) -> str:
    """sha256 of the object as sorted-key JSON (what is not JSON is hashed as its str)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
