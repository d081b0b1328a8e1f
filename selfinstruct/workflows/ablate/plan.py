"""What an ablation trains on: one held-out split shared by every selector, and each selector's training
examples, all of the same number.

The pool is the run's records as `select` (or `export`) would see them: the output of the last record
stage before them (the `judge` stage in a judged run). The held-out split is drawn from the whole pool
*before* any selection, with export's own rule (`split_ids`: by instruction id, seeded), so every
selection is evaluated on the same prompts and none trains on them. Each selector then ranks the rest
(the train pool) with the `select` stage's own ranking, and its examples are taken best first until
there are exactly N: selections of records would differ in size, since a record holds 1-3 examples.
`all` is the whole train pool in input order (the reference point; it alone is bigger than N)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...evals.decontaminate import COUNT_KEYS, STAGE as DECONTAMINATE
from ...generate.config import PipelineConfig
from ...generate.stages.export import ExportConfig, split_ids
from ...generate.stages.select import ranking_key, rank_ids
from ...io.errors import UserError
from ...io.formats import to_formats
from ...io.jsonl import atomic_write_jsonl, read_jsonl
from ...io.records import Record
from ...run.reader import Run, open_run

# selector -> the `select.by` ranking it uses (None: no ranking, the whole pool)
SELECTORS: dict[str, str | None] = {"all": None, "random": "random", "longest": "longest", "judge": "score"}
HELD_OUT = "heldout"
DATA_FILE = "train.prompt_completion.jsonl"
EVAL_FILE = "eval.prompt_completion.jsonl"
SKIP = ("select", "export")  # stages after the pool: they choose from it, or write files
# what the export left out itself, in runs made before the decontaminate stage
OLD_DECONTAMINATED = "decontaminated.jsonl"


@dataclass
class Selection:
    name: str
    rule: str
    examples: list[dict[str, Any]]  # prompt-completion rows, best first
    records: int  # records the examples come from

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(json.dumps(e, sort_keys=True) for e in self.examples).encode()).hexdigest()


@dataclass
class Plan:
    run: Path
    pool_stage: str
    pool_records: int
    eval_ids: list[str]
    eval_examples: list[dict[str, Any]]
    train_examples: int  # of the train pool
    n: int  # examples per selection (`all` excepted)
    selections: dict[str, Selection] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What the trained models depend on (compared on a re-run to reuse finished fine-tunes)."""
        return {"run": str(self.run.resolve()), "pool_stage": self.pool_stage, "pool_records": self.pool_records,
                "eval_ids": hashlib.sha256("\n".join(sorted(self.eval_ids)).encode()).hexdigest(),
                "eval_examples": len(self.eval_examples), "train_examples": self.train_examples, "n": self.n,
                "selections": {k: {"rule": s.rule, "examples": len(s.examples), "records": s.records,
                                   "sha256": s.digest} for k, s in self.selections.items()}}


def pool_stage(run: Run) -> str:
    """The last complete record stage before `select`/`export` (in the run's own order)."""
    names = [s.name for s in run.stages]
    cut = min((names.index(s) for s in SKIP if s in names), default=len(names))
    before = [s for s in run.stages[:cut] if s.name not in SKIP]
    if not before:
        raise UserError("no record stage to select from (the run has only select/export)", path=run.path)
    stage = before[-1]
    if not stage.complete:
        raise UserError(f"stage {stage.name} is not complete: finish the run first (selfinstruct generate)",
                        path=stage.path)
    return stage.name


def decontaminated(run: Run) -> set[str]:
    """The ids of the records that match benchmark prompts, as the run found them: its decontaminate stage's
    rejects (that stage may come after the pool's, before export), or the old export's own list."""
    ids = {str(row.get("id")) for s in run.stages if s.name == DECONTAMINATE
           for row in s.rows(rejects=True) if row.get("reason") in COUNT_KEYS.values()}
    flagged = run.path / "export" / OLD_DECONTAMINATED
    if flagged.is_file():
        ids |= {str(row.get("id")) for row in read_jsonl(flagged)}
    return ids


def _pool(run: Run, name: str) -> list[Record]:
    stage = next(s for s in run.stages if s.name == name)
    left_out = decontaminated(run)  # what the run left out stays out
    return [r for r in (Record.from_json(row) for row in stage.rows()) if r.instances and r.id not in left_out]


def _examples(records: list[Record], system: str | None) -> list[dict[str, Any]]:
    return [ex["prompt_completion"] for r in records for ex in to_formats(r, system)]


def make_plan(run_dir: Path, selectors: list[str], *, fraction: float | None = None, n: int | None = None,
              eval_fraction: float | None = None, seed: int | None = None) -> Plan:
    unknown = [s for s in selectors if s not in SELECTORS]
    if unknown:
        raise UserError(f"unknown selector {unknown[0]!r}; choose from {', '.join(SELECTORS)}")
    if not selectors:
        raise UserError(f"name at least one selector ({', '.join(SELECTORS)})")
    run = open_run(Path(run_dir))
    export_cfg = run.config.get("export") or {}
    seed = run.config.get("seed", PipelineConfig.seed) if seed is None else seed
    if eval_fraction is None:
        eval_fraction = export_cfg.get("eval_fraction", ExportConfig.eval_fraction)
    system = export_cfg.get("system_prompt")
    name = pool_stage(run)
    pool = _pool(run, name)
    if len(pool) < 2:
        raise UserError(f"stage {name} has {len(pool)} record(s) with examples: too few to hold any out",
                        path=run.path / name)
    if "judge" in selectors and any(not isinstance(r.extra.get("judge_score"), (int, float)) for r in pool):
        raise UserError(f"the records of stage {name} have no judge_score: add a judge stage to the run, or leave "
                        "out the judge selector", path=run.path / name)
    eval_ids = split_ids([r.id for r in pool], eval_fraction, seed)
    if not eval_ids:
        raise UserError("the held-out split is empty: an ablation needs eval_fraction > 0")
    train = [r for r in pool if r.id not in eval_ids]
    total = len(_examples(train, system))
    if n is None:
        n = math.ceil((fraction if fraction is not None else 0.2) * total)
    if not 1 <= n <= total:
        raise UserError(f"{n} examples per selection: the train pool has {total} (1..{total})")
    plan = Plan(Path(run_dir), name, len(pool), sorted(eval_ids),
                _examples([r for r in pool if r.id in eval_ids], system), total, n)
    for sel in dict.fromkeys(selectors):
        by = SELECTORS[sel]
        if by is None:
            plan.selections[sel] = Selection(sel, f"all {total} examples", _examples(train, system), len(train))
            continue
        keys = {r.id: ranking_key(r, by, seed) for r in train}
        by_id = {r.id: r for r in train}
        ranked = [by_id[i] for i in rank_ids(keys, seed)]
        chosen, used = [], 0
        for r in ranked:
            if len(chosen) >= n:
                break
            chosen += _examples([r], system)[: n - len(chosen)]
            used += 1
        how = {"random": f"random (seed {seed})", "longest": "longest answers", "score": "highest judge_score"}[by]
        plan.selections[sel] = Selection(sel, f"{n} examples, {how} first", chosen, used)
    return plan


def write_plan_data(plan: Plan, out: Path) -> dict[str, Path]:
    """OUT/heldout/eval.prompt_completion.jsonl, and per selector OUT/NAME/{train,eval}.prompt_completion.jsonl
    (the eval file, a copy of the held-out split, gives every fine-tune the same eval loss set).
    Returns selector -> its data folder."""
    atomic_write_jsonl(out / HELD_OUT / EVAL_FILE, plan.eval_examples)
    dirs = {}
    for name, sel in plan.selections.items():
        d = out / name
        atomic_write_jsonl(d / DATA_FILE, sel.examples)
        atomic_write_jsonl(d / EVAL_FILE, plan.eval_examples)
        dirs[name] = d
    return dirs
