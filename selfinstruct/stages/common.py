"""The loops shared by the stages.

`run_rounds` serves the two instruction generators (bootstrap, alpaca): each round samples
demonstrations, sends a batch of requests, parses and filters the answers against a ROUGE-L index over
seeds + kept instructions, and commits one shard. `run_batches` serves the stages that process a fixed
input list (classify, instances, filter). Both keep the next batch queued in the engine while the
current one finishes and is filtered and committed, so the engine is never idle between rounds.
To stay deterministic (and so resumable to the same dataset) with `overlap_depth` rounds in flight,
round r's machine-generated demonstrations come from rounds <= r - overlap_depth, whatever was in
flight when it was submitted."""
from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import asdict
from typing import Any, Callable

from ..backends import Request
from ..context import Context, derive_seed
from ..filters import instruction_reject_reason
from ..rouge import RougeIndex


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
    depth = st.overlap_depth

    def submit(r: int):
        rng = random.Random(derive_seed(ctx.cfg.seed, stage, "round", r))
        visible = [k for k in kept if k["round"] <= r - depth]
        reqs, metas = [], []
        for j in range(st.requests_per_round):
            prompt, meta = make_prompt(rng, visible)
            rseed = derive_seed(ctx.cfg.seed, stage, r, j)
            reqs.append(Request.from_sampling(prompt, st.sampling, seed=rseed))
            metas.append(dict(meta, request_seed=rseed))
        return r, metas, ctx.backend.submit(reqs)

    bar = ctx.progress(target, stage, initial=min(len(kept), target))
    rejected = sum(v for k, v in store.counts.items() if k.startswith("reject:"))
    bar.set_postfix(accepted=len(kept), rejected=rejected)
    inflight: deque = deque()
    next_round = len(store.parts)
    requests_done = store.counts.get("requests", 0)
    try:
        while len(kept) < target:
            # submit look-ahead rounds only while the ones in flight are not expected to reach the target
            # (yield so far, with a margin), so that little finished work is cancelled at the end
            rate = len(kept) / requests_done if requests_done and kept else 1.0
            while (len(inflight) < depth and next_round < st.max_rounds
                   and (not inflight or len(inflight) * st.requests_per_round * rate < 1.5 * (target - len(kept)))):
                inflight.append(submit(next_round))
                next_round += 1
            if not inflight:
                break
            round_no, metas, ticket = inflight.popleft()
            comps = ctx.backend.wait(ticket)
            requests_done += len(comps)
            new_kept, rejects, counts = [], [], Counter()
            _tally(counts, comps)
            for j, (c, meta) in enumerate(zip(comps, metas)):
                base_id = f"{stage[0]}{round_no:05d}-{j:03d}"
                if c.error:
                    rejects.append({"id": base_id, "reason": "request_failed", "error": c.error, "raw": c.text,
                                    "round": round_no})
                    counts["reject:request_failed"] += 1
                    continue
                items = parse(c.text, c.finish_reason == "length", meta)
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
                    rec = {"id": rid, **item, "round": round_no, "model": ctx.model_name,
                           "sampling": sampling, **meta}
                    reason = instruction_reject_reason(item["instruction"], st.filters)
                    if reason is None:
                        m = index.check_add(item["instruction"], rid)
                        rec["nearest"] = {"id": m.nearest or "", "score": m.score}
                        if m.duplicate:
                            reason = "rouge_similar"
                    if reason is None:
                        new_kept.append(rec)
                    else:
                        rec["reason"] = reason
                        rejects.append(rec)
                        counts[f"reject:{reason}"] += 1
            counts["kept"] = len(new_kept)
            store.commit(new_kept, rejects, counts=dict(counts))
            kept.extend(new_kept)
            rejected += len(rejects)
            bar.update(min(len(new_kept), target - bar.n))
            bar.set_postfix(accepted=len(kept), rejected=rejected)
    finally:
        for _, _, ticket in inflight:  # look-ahead rounds not needed (target reached) or interrupted
            ctx.backend.cancel(ticket)
        bar.close()
    if len(kept) < target:
        ctx.log(f"{stage}: stopped after max_rounds={st.max_rounds} with {len(kept)}/{target} instructions")
    store.finish({"reached": len(kept) >= target})


def run_batches(ctx: Context, store, stage: str, inputs: list[dict[str, Any]], batch_size: int,
                process: Callable[[list[dict[str, Any]], list], tuple[list[dict], list[dict], Counter]],
                make_requests: Callable[[list[dict[str, Any]]], list[Request]] | None = None) -> None:
    """Process a fixed input list in batches, one shard per batch; resume skips committed batches.
    With `make_requests`, batch k+1 is queued in the engine before batch k is processed."""
    done = store.state.get("inputs_done", 0)
    bar = ctx.progress(len(inputs), stage, initial=done)
    kept_n = store.counts.get("kept", 0)
    rej_n = sum(v for k, v in store.counts.items() if k.startswith("reject:"))
    bar.set_postfix(kept=kept_n, rejected=rej_n)
    inflight: deque = deque()
    queued = done
    try:
        while done < len(inputs):
            while queued < len(inputs) and len(inflight) < 2:
                batch = inputs[queued: queued + batch_size]
                ticket = ctx.backend.submit(make_requests(batch)) if make_requests else None
                inflight.append((batch, ticket))
                queued += len(batch)
            batch, ticket = inflight.popleft()
            comps = ctx.backend.wait(ticket) if make_requests else []
            counts = Counter()
            if make_requests:
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
        for _, ticket in inflight:
            if ticket is not None:
                ctx.backend.cancel(ticket)
        bar.close()
    store.finish()
