"""The loops shared by the stages.

`run_rounds` serves the two instruction generators (bootstrap, alpaca): each round samples
demonstrations and sends `requests_per_round` requests; every answer is parsed and filtered against a
ROUGE-L index over seeds + kept instructions, and each round is committed as one shard. `run_batches`
serves the stages that process a fixed input list (classify, instances, filter), one shard per batch.

Both hand their requests to a `scheduler.Window`, which keeps the engine's batch full across round and
batch boundaries and returns results in submission order. To stay deterministic (and so resumable to
the same dataset) while later rounds are in flight, round r's machine-generated demonstrations come
from rounds <= r - overlap_depth, whatever was running when it was built."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict
from typing import Any, Callable

from ...backends import Request
from ..context import Context, derive_seed
from ..filters import instruction_reject_reason
from ...dedup import RougeIndex
from ..scheduler import Window

PRIOR_YIELD, PRIOR_WEIGHT = 2.0, 8  # kept instructions per request assumed before any is measured


def build_index(ctx: Context, store, st) -> tuple[RougeIndex, list[dict[str, Any]]]:
    index = RougeIndex(threshold=st.filters.rouge_threshold, floor=st.nearest_floor)
    for s in ctx.seeds:
        index.add(s.instruction, s.id)
    kept = []
    for row in store.rows():
        index.add(row["instruction"], row["id"])
        kept.append(row)
    return index, kept


def _tally(counts: Counter, comps) -> None:
    counts["requests"] += len(comps)
    for c in comps:
        counts["prompt_tokens"] += c.prompt_tokens
        counts["completion_tokens"] += c.completion_tokens


def run_rounds(ctx: Context, store, stage: str, st,
               make_prompt: Callable[[random.Random, list[dict[str, Any]]], tuple[Any, dict[str, Any]]],
               parse: Callable[[str, bool, dict[str, Any]], list[tuple[dict[str, Any] | None, str]]]) -> None:
    """make_prompt(rng, kept) -> (prompt, prompt provenance); parse(text, truncated, meta) ->
    [(item, "") or (None, reason)] where item has at least "instruction"."""
    index, kept = build_index(ctx, store, st)
    target = st.num_instructions
    sampling = asdict(st.sampling)
    depth, per_round = st.overlap_depth, st.requests_per_round
    next_round = len(store.parts)
    processed = store.counts.get("requests", 0)
    rejected = sum(v for k, v in store.counts.items() if k.startswith("reject:"))
    new_kept: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    counts: Counter = Counter()

    # The order-free part of processing an answer (parsing and the instruction filters) is done as soon
    # as it arrives; ROUGE-L against the pool has to wait for its turn. `checked` holds the results,
    # [(item, reason)] with reason "" for items that passed, or None for a failed request.
    checked: dict[tuple[int, int], list[tuple[dict[str, Any] | None, str]] | None] = {}
    waiting = passed = 0  # items that passed the filters: in answers waiting for their turn; processed
    kept_before = len(kept)

    def on_finish(g, j, c) -> None:
        nonlocal waiting
        if c.error:
            checked[g.key, j] = None
            return
        items = [(item, reason if item is None else instruction_reject_reason(item["instruction"], st.filters) or "")
                 for item, reason in parse(c.text, c.finish_reason == "length", g.meta[j])]
        checked[g.key, j] = items
        waiting += sum(1 for item, reason in items if item is not None and not reason)

    # Near the end a request is started only while what is outstanding is not expected to reach the
    # target, so that little work is wasted when it is reached. An answer waiting for its turn counts
    # for the items that passed the filters (times the share that passed ROUGE-L so far); a request
    # still running for the yield per request so far, starting from a prior (a first burst of a whole
    # window would be mostly wasted on a small run).
    def gate(w: Window) -> bool:
        n = len(kept) + len(new_kept)
        rate = (n + PRIOR_YIELD * PRIOR_WEIGHT) / (processed + PRIOR_WEIGHT)
        rouge_keep = (n - kept_before + PRIOR_WEIGHT) / (passed + PRIOR_WEIGHT)
        return waiting * rouge_keep + w.in_flight * rate < target - n

    def open_round(r: int) -> None:
        rng = random.Random(derive_seed(ctx.cfg.seed, stage, "round", r))
        visible = [k for k in kept if k["round"] <= r - depth]
        reqs, metas = [], []
        for j in range(per_round):
            prompt, meta = make_prompt(rng, visible)
            rseed = derive_seed(ctx.cfg.seed, stage, r, j)
            reqs.append(Request.from_sampling(prompt, st.sampling, seed=rseed))
            metas.append(dict(meta, request_seed=rseed))
        first = not window.limit
        window.add(r, reqs, metas)
        if first and depth * per_round < window.capacity // 2:
            ctx.log(f"{stage}: the engine runs ~{window.capacity} such requests at once, but at most "
                    f"overlap_depth x requests_per_round = {depth * per_round} can be in flight; "
                    "raise requests_per_round for throughput")

    def process(round_no: int, j: int, c, meta) -> None:
        nonlocal waiting, passed
        items = checked.pop((round_no, j))
        base_id = f"{stage[0]}{round_no:05d}-{j:03d}"
        if items is None:
            rejects.append({"id": base_id, "reason": "request_failed", "error": c.error, "raw": c.text,
                            "round": round_no})
            counts["reject:request_failed"] += 1
            return
        ok = sum(1 for item, reason in items if item is not None and not reason)
        waiting -= ok
        passed += ok
        if not items:
            rejects.append({"id": base_id, "reason": "unparseable", "raw": c.text, "round": round_no})
            counts["reject:unparseable"] += 1
        for k, (item, reason) in enumerate(items):
            if len(kept) + len(new_kept) >= target:
                break
            rid = f"{base_id}-{k:02d}"
            if item is None:
                rejects.append({"id": rid, "reason": reason, "raw": c.text, "round": round_no})
                counts[f"reject:{reason}"] += 1
                continue
            rec = {"id": rid, **item, "round": round_no, "model": ctx.model_name, "sampling": sampling, **meta}
            if not reason:
                m = index.check_add(item["instruction"], rid)
                rec["nearest"] = {"id": m.nearest or "", "score": m.score}
                if m.duplicate:
                    reason = "rouge_similar"
            if not reason:
                new_kept.append(rec)
            else:
                rec["reason"] = reason
                rejects.append(rec)
                counts[f"reject:{reason}"] += 1

    window = Window(ctx.backend, gate=gate, on_finish=on_finish)
    bar = ctx.progress(target, stage, initial=min(len(kept), target))
    bar.set_postfix(accepted=len(kept), rejected=rejected)
    try:
        while len(kept) < target:
            # round r is built once rounds <= r - depth are committed
            while next_round < st.max_rounds and next_round < len(store.parts) + depth:
                open_round(next_round)
                next_round += 1
            item = window.next()
            if item is None:
                break
            g, j, c = item
            processed += 1
            _tally(counts, [c])
            before = len(new_kept), len(rejects)
            process(g.key, j, c, g.meta[j])
            bar.update(min(len(new_kept) - before[0], target - bar.n))
            rejected += len(rejects) - before[1]
            bar.set_postfix(accepted=len(kept) + len(new_kept), rejected=rejected)
            if j == len(g.requests) - 1 or len(kept) + len(new_kept) >= target:
                counts["kept"] = len(new_kept)
                store.commit(new_kept, rejects, counts=dict(counts))
                kept.extend(new_kept)
                new_kept, rejects, counts = [], [], Counter()
    finally:
        window.close()  # look-ahead requests not needed (target reached) or interrupted
        bar.close()
    if len(kept) < target:
        ctx.log(f"{stage}: stopped after max_rounds={st.max_rounds} with {len(kept)}/{target} instructions")
    store.finish({"reached": len(kept) >= target})


def run_batches(ctx: Context, store, stage: str, inputs: list[dict[str, Any]], batch_size: int,
                process: Callable[[list[dict[str, Any]], list], tuple[list[dict], list[dict], Counter]],
                make_requests: Callable[[list[dict[str, Any]]], list[Request]] | None = None) -> None:
    """Process a fixed input list in batches, one shard per batch; resume skips committed batches.
    With `make_requests`, the requests of later batches keep the engine busy while a batch is processed."""
    done = store.state.get("inputs_done", 0)
    bar = ctx.progress(len(inputs), stage, initial=done)
    kept_n = store.counts.get("kept", 0)
    rej_n = sum(v for k, v in store.counts.items() if k.startswith("reject:"))
    bar.set_postfix(kept=kept_n, rejected=rej_n)
    window = Window(ctx.backend)
    queued = done
    try:
        while done < len(inputs):
            counts = Counter()
            if make_requests is None:
                batch, comps = inputs[done: done + batch_size], []
            else:
                while queued < len(inputs) and window.queued < max(window.limit, batch_size):
                    batch = inputs[queued: queued + batch_size]
                    window.add(batch, make_requests(batch))
                    queued += len(batch)
                g, comps = window.next_group()
                batch = g.key
                _tally(counts, comps)
            rows, rejects, more = process(batch, comps)
            counts.update(more)
            counts["kept"] += len(rows)
            done += len(batch)
            store.commit(rows, rejects, state={"inputs_done": done}, counts=dict(counts))
            kept_n += len(rows)
            rej_n += sum(v for k, v in counts.items() if k.startswith("reject:"))
            bar.update(len(batch))
            bar.set_postfix(kept=kept_n, rejected=rej_n)
    finally:
        window.close()
        bar.close()
    store.finish()
