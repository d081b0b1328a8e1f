"""What every stage gets: config, run directory, seed tasks, its backend and executor, progress output,
and the run so far (run.json and the completed stages' manifests: a sink's facts)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import Backend
from ..io.console import terminal
from ..run.reader import Run, StageDir
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
    info: dict[str, Any] = field(default_factory=dict)  # run.json as the pipeline wrote it
    done: list[StageDir] = field(default_factory=list)  # the stages completed so far, in run order

    def run_so_far(self) -> Run:
        """The run as the pipeline holds it (its run.json, the manifests of the stages completed): what a
        sink's dataset card is built from, without reading the run directory back."""
        return Run(self.run_dir, self.info, list(self.done))

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
