"""What every stage gets: config, run directory, seed tasks, a lazily started backend, progress output."""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import PipelineConfig
from .seeds import SeedTask


def derive_seed(*parts) -> int:
    """Deterministic 31-bit seed from (global seed, stage, record id ...): resumes reproduce requests."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


@dataclass
class Context:
    cfg: PipelineConfig
    run_dir: Path
    seeds: list[SeedTask]
    backend_factory: Callable[[], object]
    quiet: bool = False
    _backend: object | None = field(default=None, repr=False)

    @property
    def backend(self):
        if self._backend is None:
            self._backend = self.backend_factory()
        return self._backend

    @property
    def model_name(self) -> str:
        return self.cfg.model

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)  # -q hides progress bars, not these few lines

    def progress(self, total: int, desc: str, initial: int = 0):
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit="rec", disable=self.quiet,
                    file=sys.stderr, dynamic_ncols=True, leave=True)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
