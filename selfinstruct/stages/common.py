"""The round loop shared by the two instruction generators (bootstrap, alpaca): each round samples
demonstrations, sends a batch of requests, parses and filters the answers against a ROUGE-L index
over seeds + kept instructions, and commits one shard. Resume rebuilds the index from the shards."""
from __future__ import annotations

import random
from collections import Counter
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


def run_rounds(ctx: Context, store, stage: str, st,
               make_prompt: Callable[[random.Random, list[dict[str, Any]]], tuple[Any, dict[str, Any]]],
               parse: Callable[[str, bool, dict[str, Any]], list[tuple[dict[str, Any] | None, str]]]) -> None:
    """make_prompt(rng, kept) -> (prompt, prompt provenance); parse(text, truncated, meta) ->
    [(item, "") or (None, reason)] where item has at least "instruction"."""
    index, kept = build_index(ctx, store, st)
    target = st.num_instructions
    round_no = len(store.parts)
    sampling = asdict(st.sampling)
    bar = ctx.progress(target, stage, initial=min(len(kept), target))
    rejected = sum(v for k, v in store.counts.items() if k.startswith("reject:"))
    bar.set_postfix(accepted=len(kept), rejected=rejected)
    try:
        while len(kept) < target and round_no < st.max_rounds:
            rng = random.Random(derive_seed(ctx.cfg.seed, stage, "round", round_no))
            reqs, metas = [], []
            for j in range(st.requests_per_round):
                prompt, meta = make_prompt(rng, kept)
                rseed = derive_seed(ctx.cfg.seed, stage, round_no, j)
                reqs.append(Request.from_sampling(prompt, st.sampling, seed=rseed))
                metas.append(dict(meta, request_seed=rseed))
            comps = ctx.backend.generate(reqs)
            new_kept, rejects, counts = [], [], Counter()
            counts["requests"] = len(reqs)
            for j, (c, meta) in enumerate(zip(comps, metas)):
                counts["prompt_tokens"] += c.prompt_tokens
                counts["completion_tokens"] += c.completion_tokens
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
            round_no += 1
            bar.update(min(len(new_kept), target - bar.n))
            bar.set_postfix(accepted=len(kept), rejected=rejected)
    finally:
        bar.close()
    if len(kept) < target:
        ctx.log(f"{stage}: stopped after max_rounds={st.max_rounds} with {len(kept)}/{target} instructions")
    store.finish({"reached": len(kept) >= target})


def run_batches(ctx: Context, store, stage: str, inputs: list[dict[str, Any]], batch_size: int,
                process: Callable[[list[dict[str, Any]]], tuple[list[dict], list[dict], Counter]]) -> None:
    """Process a fixed input list in batches, one shard per batch; resume skips committed batches."""
    done = store.state.get("inputs_done", 0)
    bar = ctx.progress(len(inputs), stage, initial=done)
    kept_n = store.counts.get("kept", 0)
    rej_n = sum(v for k, v in store.counts.items() if k.startswith("reject:"))
    bar.set_postfix(kept=kept_n, rejected=rej_n)
    try:
        while done < len(inputs):
            batch = inputs[done: done + batch_size]
            rows, rejects, counts = process(batch)
            counts["kept"] += len(rows)
            done += len(batch)
            store.commit(rows, rejects, state={"inputs_done": done}, counts=dict(counts))
            kept_n += len(rows)
            rej_n += sum(v for k, v in counts.items() if k.startswith("reject:"))
            bar.update(len(batch))
            bar.set_postfix(kept=kept_n, rejected=rej_n)
    finally:
        bar.close()
    store.finish()


def generate_for(ctx: Context, prompts: list[Any], sampling, seeds: list[int], counts: Counter):
    reqs = [Request.from_sampling(p, sampling, seed=s) for p, s in zip(prompts, seeds)]
    comps = ctx.backend.generate(reqs)
    counts["requests"] += len(reqs)
    for c in comps:
        counts["prompt_tokens"] += c.prompt_tokens
        counts["completion_tokens"] += c.completion_tokens
    return comps
