"""Selection: which records go on to training. By the judge's score (`judge_score >= min_score`, the best
`k`, or the best `fraction`), or by one of the two baselines a judge must beat: the longest answers
(Zhao et al. 2024, "Long Is More for Alignment") and a seeded random sample of the same size.

Every decision needs the whole input (a rank), so the input is read twice: once for the ranking keys,
once to write the records in their input order, each with its selection metadata (`selection`: the
rule, its rank and the key it was ranked by); the others are rejects with the same metadata. The
ranking is a pure function of the records and the seed: ties are broken by a hash of the id, not by
input order, so the same records are selected however the input was sharded."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from ...backends.base import Completion
from ...io.errors import UserError
from ...io.records import Record, Reject
from ...io.settings import SEED_MAX, setting
from ..options import derive_seed
from ..registry import register_stage
from ..stage import BatchStage, StageResult

METHODS = ("score", "longest", "random")


@dataclass
class SelectConfig:
    by: str = setting("score", choices=METHODS, help="score: the judge's judge_score; longest: answer length in "
                                                     "characters (baseline); random: a seeded sample (baseline)")
    min_score: float | None = setting(4.0, help="by score: keep records with judge_score >= this (null: no floor, "
                                                "then k or fraction); the baselines do not use it")
    k: int | None = setting(None, min=1, help="keep the first k by the ranking (the best scores, the longest, "
                                              "a random k)")
    fraction: float | None = setting(None, min=0.0, max=1.0, min_exclusive=True,
                                     help="keep this share of the input, first by the ranking")
    seed: int | None = setting(None, min=0, max=SEED_MAX,
                               help="seed of the random sample and of tie-breaking (default: the pipeline's)")
    batch_size: int = setting(1024, min=1, help="records per shard")

    def check(self, err) -> None:
        if self.k is not None and self.fraction is not None:
            err("k", "set k or fraction, not both")
        if self.by != "score" and self.k is None and self.fraction is None:
            err("by", f"by: {self.by} needs k or fraction (a baseline is compared with a selection of the same size)")
        if self.by == "score" and self.min_score is None and self.k is None and self.fraction is None:
            err("min_score", "say what to keep: min_score, k or fraction")

    @property
    def floor(self) -> float | None:
        """The score floor that applies (the baselines rank by something else)."""
        return self.min_score if self.by == "score" else None

    def rule(self, seed: int) -> str:
        """The selection in words, as each record and the manifest carry it."""
        how_many = f"top {self.k}" if self.k is not None else (
            f"top {100 * self.fraction:g}%" if self.fraction is not None else "all")
        if self.by == "score":
            floor = f"judge_score >= {self.floor:g}" if self.floor is not None else ""
            return " and ".join(x for x in (floor, f"{how_many} by judge_score" if how_many != "all" else "") if x)
        if self.by == "longest":
            return f"{how_many} by answer length"
        return f"random {how_many.removeprefix('top ')} (seed {seed})"


def answer_length(r: Record) -> float:
    """Characters of the record's outputs, per instance (each instance is one training example)."""
    return statistics.fmean(len(i.output) for i in r.instances) if r.instances else 0.0


def ranking_key(r: Record, by: str, seed: int) -> float:
    """What a record is ranked by (higher first): its judge score, its answer length, or a seeded draw."""
    if by == "score":
        if not isinstance(r.extra.get("judge_score"), (int, float)):
            raise UserError(f"record {r.id} has no judge_score: put a judge stage before select")
        return float(r.extra["judge_score"])
    if by == "longest":
        return answer_length(r)
    return derive_seed(seed, "select", "random", r.id) / 2 ** 31


def rank_ids(keys: dict[str, float], seed: int) -> list[str]:
    """The ids best first; ties broken by a hash of the id (not input order: sharding cannot change it)."""
    tie = {i: derive_seed(seed, "select", "tie", i) for i in keys}
    return sorted(keys, key=lambda i: (-keys[i], tie[i]))


@register_stage
class Select(BatchStage):
    name = "select"
    Config = SelectConfig
    reads = frozenset({"instruction", "instances"})
    writes = frozenset({"selection"})
    order = 50

    @classmethod
    def reads_for(cls, cfg: SelectConfig | None) -> frozenset[str]:
        """By score it needs a judge before it; the baselines need none."""
        return cls.reads | ({"judge_score"} if cfg is not None and cfg.by == "score" else set())

    @property
    def seed(self) -> int:
        return self.ctx.cfg.seed if self.cfg.seed is None else self.cfg.seed

    def decide(self, records) -> dict[str, dict[str, Any]]:
        """id -> {"rank", "key", "keep", "why"} for every input record."""
        keys = {r.id: ranking_key(r, self.cfg.by, self.seed) for r in records}
        order = rank_ids(keys, self.seed)
        st = self.cfg
        eligible = [i for i in order if st.floor is None or keys[i] >= st.floor]
        n = st.k if st.k is not None else (math.ceil(st.fraction * len(order)) if st.fraction is not None else None)
        chosen = set(eligible[:n] if n is not None else eligible)
        out = {}
        for rank, i in enumerate(order, 1):
            why = "" if i in chosen else ("below_min_score" if st.floor is not None and keys[i] < st.floor
                                          else "not_selected")
            out[i] = {"rank": rank, "key": round(keys[i], 4), "keep": i in chosen, "why": why}
        return out

    def begin(self, store, inputs) -> None:
        self.rule = self.cfg.rule(self.seed)
        self.decisions = self.decide(inputs.records())
        kept = sum(d["keep"] for d in self.decisions.values())
        store.manifest["selection"] = {"rule": self.rule, "by": self.cfg.by, "of": len(self.decisions), "kept": kept}

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        for r in batch:
            d = self.decisions[r.id]
            r.extra["selection"] = {"rule": self.rule, "rank": d["rank"], "key": d["key"]}
            if d["keep"]:
                out.keep(r)
            else:
                out.reject(Reject(r.id, d["why"], record=r))
        return out
