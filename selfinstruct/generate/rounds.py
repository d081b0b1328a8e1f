"""Runs a generator stage (bootstrap, alpaca) round by round.

Each round samples demonstrations and sends `requests_per_round` requests; every answer is parsed and
filtered against an exact ROUGE-L index over the seeds and the kept instructions, in request order,
and each round is committed as one shard. The requests go through a `scheduler.Window`, which keeps
the engine's batch full across rounds and hands results back in request order. To stay deterministic
(and so resumable to the same dataset) while later rounds are in flight, round r's machine-generated
demonstrations come from rounds <= r - overlap_depth, whatever was running when it was built."""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from ..backends.base import Completion, Request
from ..dedup import RougeIndex
from ..io.errors import Incomplete
from ..io.records import Counts, Record, Reject
from ..io.shards import StageStore
from .options import derive_seed
from .filters import instruction_reject_reason
from .scheduler import Group, TooManyFailures, Window
from .stage import RoundsStage

PRIOR_YIELD, PRIOR_WEIGHT = 2.0, 8  # kept instructions per request assumed before any is measured

Checked = list[tuple[Record | None, str]]  # items of one answer: (item, "" or why the filters drop it)


@dataclass
class Yield:
    """What the gate needs to guess how many more requests the target needs."""
    processed: int = 0  # answers handed back in order (this run and earlier ones)
    waiting: int = 0  # items that passed the order-free filters, in answers not processed yet
    passed: int = 0  # items that passed those filters, processed
    kept_before: int = 0  # instructions kept before this run started


@dataclass
class Shard:
    """The round being collected: committed as one part when its last answer is processed."""
    kept: list[Record] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)


class RoundsRunner:
    def __init__(self, stage: RoundsStage, store: StageStore):
        self.stage, self.store = stage, store
        self.ctx, self.st = stage.ctx, stage.cfg
        self.index = RougeIndex(threshold=self.st.filters.rouge_threshold, floor=self.st.nearest_floor)
        for s in self.ctx.seeds:
            self.index.add(s.instruction, s.id)
        self.kept: list[Record] = []
        for rec in store.records():  # resume: the pool is what earlier runs committed
            self.index.add(rec.instruction, rec.id)
            self.kept.append(rec)
        self.target = self.st.num_instructions
        self.sampling = asdict(self.st.sampling)
        self.model_name = self.ctx.cfg.model_of(stage.name)
        self.next_round = len(store.parts)
        self.stats = Yield(processed=store.totals()["requests"], kept_before=len(self.kept))
        self.rejected = store.totals().dropped("record")
        # The order-free part of processing an answer (parsing and the instruction filters) is done as
        # soon as it arrives; ROUGE-L against the pool has to wait for its turn.
        self.checked: dict[tuple[int, int], Checked | None] = {}  # None: the request failed
        self.shard = Shard()
        self.window = Window(self.ctx.backend_for(stage.name), gate=self.gate, on_finish=self.on_finish,
                             max_failures=self.ctx.cfg.max_consecutive_failures)

    @property
    def n_kept(self) -> int:
        return len(self.kept) + len(self.shard.kept)

    # ---------------------------------------------------------------------------- window callbacks
    def on_finish(self, g: Group, j: int, c: Completion) -> None:
        if c.error:
            self.checked[g.key, j] = None
            return
        items = [(item, reason if item is None else instruction_reject_reason(item.instruction, self.st.filters) or "")
                 for item, reason in self.stage.parse(c.text, c.finish_reason == "length", g.meta[j])]
        self.checked[g.key, j] = items
        self.stats.waiting += sum(1 for item, reason in items if item is not None and not reason)

    def gate(self, w: Window) -> bool:
        """Near the end a request is started only while what is outstanding is not expected to reach
        the target, so that little work is wasted when it is reached. An answer waiting for its turn
        counts for the items that passed the filters (times the share that passed ROUGE-L so far); a
        request still running for the yield per request so far, starting from a prior (a first burst
        of a whole window would be mostly wasted on a small run)."""
        n, s = self.n_kept, self.stats
        rate = (n + PRIOR_YIELD * PRIOR_WEIGHT) / (s.processed + PRIOR_WEIGHT)
        rouge_keep = (n - s.kept_before + PRIOR_WEIGHT) / (s.passed + PRIOR_WEIGHT)
        return s.waiting * rouge_keep + w.in_flight * rate < self.target - n

    # ----------------------------------------------------------------------------------- rounds
    def open_round(self, r: int) -> None:
        st, seed, name = self.st, self.ctx.cfg.seed, self.stage.name
        rng = random.Random(derive_seed(seed, name, "round", r))
        visible = [k for k in self.kept if k.provenance["round"] <= r - st.overlap_depth]
        reqs, metas = [], []
        for j in range(st.requests_per_round):
            prompt, meta = self.stage.make_prompt(rng, visible)
            rseed = derive_seed(seed, name, r, j)
            reqs.append(Request.from_sampling(prompt, st.sampling, seed=rseed))
            metas.append(dict(meta, request_seed=rseed))
        first = not self.window.limit
        self.window.add(r, reqs, metas)
        in_flight = st.overlap_depth * st.requests_per_round
        if first and in_flight < self.window.capacity // 2:
            self.ctx.log(f"{name}: the engine runs ~{self.window.capacity} such requests at once, but at most "
                         f"overlap_depth x requests_per_round = {in_flight} can be in flight; "
                         "raise requests_per_round for throughput")

    def take(self, round_no: int, j: int, c: Completion, meta: dict) -> None:
        """Process one answer in its turn: ROUGE-L against the pool, keep or reject each item."""
        items = self.checked.pop((round_no, j))
        base_id = f"{self.stage.name[0]}{round_no:05d}-{j:03d}"
        out = self.shard
        if items is None:
            # Later rounds' demonstrations depend on this one: stop committing here. The round is asked
            # again on resume, with the same seeds, so the dataset is the one a run without the failure gives.
            raise Incomplete(self.stage.name, self.window.failed, c.error or "")
        ok = sum(1 for item, reason in items if item is not None and not reason)
        self.stats.waiting -= ok
        self.stats.passed += ok
        if not items:
            out.rejects.append(Reject(base_id, "unparseable", raw=c.text, round=round_no))
            out.counts.drop("record", "unparseable")
        for k, (item, reason) in enumerate(items):
            if self.n_kept >= self.target:
                break
            rid = f"{base_id}-{k:02d}"
            if item is None:
                out.rejects.append(Reject(rid, reason, raw=c.text, round=round_no))
                out.counts.drop("record", reason)
                continue
            item.id = rid
            item.provenance = {"round": round_no, "model": self.model_name, "sampling": self.sampling, **meta}
            if not reason:
                m = self.index.check_add(item.instruction, rid)
                item.provenance["nearest"] = {"id": m.nearest or "", "score": m.score}
                if m.duplicate:
                    reason = "rouge_similar"
            if not reason:
                out.kept.append(item)
            else:
                out.rejects.append(Reject(rid, reason, record=item))
                out.counts.drop("record", reason)

    def commit(self) -> None:
        out = self.shard
        out.counts.add("kept", len(out.kept))
        self.store.commit(out.kept, out.rejects, counts=out.counts)
        self.kept.extend(out.kept)
        self.shard = Shard()

    def run(self) -> None:
        st = self.st
        bar = self.ctx.progress(self.target, self.stage.name, initial=min(len(self.kept), self.target))
        bar.set_postfix(accepted=len(self.kept), rejected=self.rejected)
        try:
            while len(self.kept) < self.target:
                # round r is built once rounds <= r - depth are committed
                while self.next_round < st.max_rounds and self.next_round < len(self.store.parts) + st.overlap_depth:
                    self.open_round(self.next_round)
                    self.next_round += 1
                try:
                    got = self.window.next()
                except TooManyFailures as e:
                    raise Incomplete(self.stage.name, self.window.failed, e.error) from None
                if got is None:
                    break
                g, j, c = got
                self.stats.processed += 1
                self.shard.counts.add("requests")
                self.shard.counts.add("prompt_tokens", c.prompt_tokens)
                self.shard.counts.add("completion_tokens", c.completion_tokens)
                kept_n, rej_n = len(self.shard.kept), len(self.shard.rejects)
                self.take(g.key, j, c, g.meta[j])
                bar.update(min(len(self.shard.kept) - kept_n, self.target - bar.n))
                self.rejected += len(self.shard.rejects) - rej_n
                bar.set_postfix(accepted=self.n_kept, rejected=self.rejected)
                if j == len(g.requests) - 1 or self.n_kept >= self.target:
                    self.commit()
        finally:
            self.window.close()  # look-ahead requests not needed (target reached) or interrupted
            bar.close()
        if len(self.kept) < self.target:
            self.ctx.log(f"{self.stage.name}: stopped after max_rounds={st.max_rounds} with "
                         f"{len(self.kept)}/{self.target} instructions")
        self.store.finish({"reached": len(self.kept) >= self.target})
