"""What a stage is. Every stage declares its name, its config section (a dataclass), its prompt
template version, and the record fields it reads, writes and removes; the pipeline checks the wiring
from these before anything runs. A stage has one of three shapes:

- `BatchStage`: a fixed input, shard by shard. `requests(batch)` builds one request per record (or none,
  for stages without a model), an executor runs them, and `process(batch, completions)` returns the
  kept records, the rejects and the counts. Stages never know where their requests ran.
- `RoundsStage`: a generator that grows a pool round by round (bootstrap, alpaca): `make_prompt(rng,
  visible)` and `parse(text, truncated, meta)`; `generate.rounds.RoundsRunner` does the rest.
- `SinkStage`: writes files from its whole input (export), given the run's facts for its dataset card.

A stage only declares what it does; the pipeline runs it by its shape (`pipeline.run_stage`), so this
module imports no runner and nothing that knows the stages.

A new stage is one module: a subclass, decorated with `@register_stage`, and its YAML section."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Protocol

from ..backends.base import Backend, Completion, Request
from ..io.records import Counts, Record, Reject
from ..io.seeds import SeedTask

if TYPE_CHECKING:
    from ..hub.facts import RunFacts
    from ..io.shards import StageStore
    from ..run.reader import Run


class StageContext(Protocol):
    """What a stage gets from the pipeline (`generate.context.Context` is the one it passes)."""
    cfg: Any  # the PipelineConfig
    run_dir: Path
    seeds: list[SeedTask]

    def backend_for(self, stage: str) -> Backend: ...

    def executor_for(self, stage: str) -> Any: ...

    def log(self, msg: str) -> None: ...

    def progress(self, total: int, desc: str, initial: int = 0) -> Any: ...

    def run_so_far(self) -> "Run": ...


class Records(Protocol):
    """What a batch stage reads, shard by shard: a stage store, or a source stage's own records."""

    def records(self) -> Iterator[Record]: ...

    def num_rows(self) -> int: ...


class SourceRecords:
    """A source stage's own records where a stage store would be: what `run_batch_stage` reads."""

    def __init__(self, records: list[Record]):
        self._records = records

    def num_rows(self) -> int:
        return len(self._records)

    def records(self) -> Iterator[Record]:
        yield from self._records


@dataclass
class StageResult:
    rows: list[Record] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)

    def keep(self, record: Record) -> None:
        self.rows.append(record)

    def reject(self, reject: Reject) -> None:
        self.rejects.append(reject)
        if reject.level == "note":
            self.counts.note(reject.reason)
        else:
            self.counts.drop(reject.level, reject.reason)


class Stage:
    name: ClassVar[str] = ""
    Config: ClassVar[type] = type(None)  # the dataclass of its YAML section
    template_version: ClassVar[str | None] = None  # part of the stage hash: edit a prompt, bump it
    # part of the stage hash too: bump it when a change to the stage's code changes what it writes for the
    # same input (a parser, a filter rule, a field's layout), so old shards are refused, not resumed. Not
    # for refactors that write the same bytes. 0 is left out of the hash: runs written before stages had
    # a code version keep resuming.
    code_version: ClassVar[int] = 0
    reads: ClassVar[frozenset[str]] = frozenset()  # record fields it needs from upstream
    writes: ClassVar[frozenset[str]] = frozenset()  # record fields it adds
    removes: ClassVar[frozenset[str]] = frozenset()  # record fields it drops
    after: ClassVar[frozenset[str]] = frozenset()  # stages that must come before it in a pipeline
    generator: ClassVar[bool] = False  # starts a pipeline (reads the seed tasks, not a stage)
    source: ClassVar[bool] = False  # starts a pipeline by reading another run's output (`input_digest`)
    sink: ClassVar[bool] = False  # writes files, not records: nothing can follow it
    uses_model: ClassVar[bool] = False
    # files in its folder that the user may edit (export's dataset card): kept when the stage is re-run
    # or discarded with --force, and never compared with a hash (io.shards.StageStore `keep`)
    user_files: ClassVar[tuple[str, ...]] = ()
    order: ClassVar[int] = 50  # where it is listed among a run's stages (generators 10, export 90)

    @classmethod
    def reads_for(cls, cfg: Any | None) -> frozenset[str]:
        """The fields it reads with this config section (None: not loaded yet, the least it reads). A
        stage whose settings decide what it needs (select by judge score or by length) overrides it."""
        return cls.reads

    @classmethod
    def input_digest(cls, cfg: Any) -> str:
        """A source stage: the content hash of what it reads from outside the run (it keys the stage's
        hash, as the seed file's hash keys a generator's). Raises UserError when that input is missing."""
        raise NotImplementedError

    def __init__(self, ctx: StageContext, cfg: Any):
        self.ctx, self.cfg = ctx, cfg

    def run(self, store: "StageStore", inputs: "StageStore | None") -> None:
        """A stage of none of the three shapes below runs itself; the pipeline runs the others."""
        raise NotImplementedError


DEFAULT_BATCH_SIZE = 256  # records per shard of a batch stage whose config has no `batch_size`


class BatchStage(Stage):
    """Records in, records out, shard by shard."""

    @property
    def batch_size(self) -> int:
        return getattr(self.cfg, "batch_size", DEFAULT_BATCH_SIZE)

    def requests(self, batch: list[Record]) -> list[Request] | None:
        """One request per record, or None when the stage needs no model."""
        return None

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        raise NotImplementedError

    def begin(self, store: "StageStore", inputs: "StageStore | None") -> None:
        """Called once before its batches run (a resumed run too): a stage that needs its whole input
        first (select's ranking) reads it here."""

    def input(self, inputs: "StageStore | None") -> Records:
        """What it reads: the stage before it; a source stage returns its own records."""
        if inputs is None:
            raise TypeError(f"{self.name}: a batch stage reads the stage before it (or overrides input())")
        return inputs


class RoundsStage(Stage):
    """A generator that grows its pool round by round, each answer filtered against the pool."""
    generator = True
    uses_model = True
    order = 10

    def make_prompt(self, rng: random.Random, visible: list[Record]) -> tuple[Any, dict[str, Any]]:
        """A prompt and its provenance (which demonstrations it shows)."""
        raise NotImplementedError

    def parse(self, text: str, truncated: bool, meta: dict[str, Any]) -> list[tuple[Record | None, str]]:
        """Items found in one answer: (record without id, "") or (None, reason)."""
        raise NotImplementedError


class SinkStage(Stage):
    """Writes files from the whole input (streamed); its manifest lists them. The pipeline passes it the
    run's facts (`hub.facts.RunFacts`: the stages before it, their counts, models, hashes), which its
    dataset card states: a sink never reads the run directory for them."""
    sink = True
    order = 90

    def write(self, inputs: "StageStore", store: "StageStore", facts: "RunFacts") -> tuple[list[str], Counts]:
        """Write the files (each atomically) into `store.dir`; return their names and the counts."""
        raise NotImplementedError
