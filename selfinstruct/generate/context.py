"""What every stage gets: config, run directory, seed tasks, its backend and executor, progress output."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backends import Backend
from ..io.console import terminal
from .config import PipelineConfig
from .engines import Engines
from ..io.seeds import SeedTask


@dataclass
class Context:
    cfg: PipelineConfig
    run_dir: Path
    seeds: list[SeedTask]
    engines: Engines
    quiet: bool = False

    def backend_for(self, stage: str) -> Backend:
        return self.engines.get(stage)

    def executor_for(self, stage: str):
        return self.engines.executor(stage)

    def log(self, msg: str) -> None:
        print(msg, file=terminal(), flush=True)  # -q hides progress bars and library output, not these lines

    def progress(self, total: int, desc: str, initial: int = 0):
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit="rec", disable=self.quiet,
                    file=terminal(), dynamic_ncols=True, leave=True)
