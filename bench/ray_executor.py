"""Ray executor vs local executor: generated tokens/s on the same requests, on this machine.

    python bench/ray_executor.py [--prompts 32] [--max-tokens 64] [--replicas 1] [--batch-size 16]
                                 [--address auto] [--model PATH] [--tensor-parallel-size 1]

Both sides run the same `Request`s (chat prompts, per-request seeds) through an `Executor`: the local
one through the in-process vLLM engine (`LocalExecutor`), the Ray one through `ray.data.llm` replicas
(`RayExecutor`). A Ray job starts its replicas, so the Ray side runs twice, N then 2N requests: the
difference is its steady-state rate, the rest its start. The local engine's start is timed apart.
With one replica on one machine the steady-state ratio is Ray's overhead; on a multi-GPU node, run the
same command with `--replicas 8` (one per GPU) or `--replicas 1 --tensor-parallel-size 8`, and
`--address auto` after `ray start --head`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def requests(n: int, max_tokens: int):
    from selfinstruct.backends import Request

    topics = "rivers budgets recipes planets chess poems invoices gardens".split()
    return [Request([{"role": "user", "content": f"Write three sentences about {topics[i % len(topics)]} "
                                                 f"(variant {i})."}],
                    max_tokens=max_tokens, temperature=0.7, seed=i) for i in range(n)]


def run(executor, reqs, batch: int):
    batches = [list(range(i, min(i + batch, len(reqs)))) for i in range(0, len(reqs), batch)]
    t0 = time.time()
    comps = [c for _, cs in executor.map(batches, lambda b: [reqs[i] for i in b]) for c in cs]
    return comps, time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--address", default=None, help="Ray cluster (default: a local one for this run)")
    ap.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    ap.add_argument("--skip-local", action="store_true", help="Ray side only (a model too big for one GPU)")
    args = ap.parse_args()

    from selfinstruct.backends.vllm_engine import VllmBackend, VllmOptions
    from selfinstruct.generate.executor import LocalExecutor
    from selfinstruct.generate.ray.engines import VllmRayEngine
    from selfinstruct.generate.ray.cluster import RayOptions, Session
    from selfinstruct.generate.ray.executor import RayExecutor
    from selfinstruct.models import prepare_embedded_model

    model = args.model or str(prepare_embedded_model())
    reqs = requests(args.prompts, args.max_tokens)
    opts = VllmOptions(max_model_len=1024)
    out = {"prompts": args.prompts, "max_tokens": args.max_tokens, "replicas": args.replicas,
           "tensor_parallel_size": args.tensor_parallel_size}

    if not args.skip_local:
        t0 = time.time()
        backend = VllmBackend(model, opts, seed=0)
        out["local_engine_start_s"] = round(time.time() - t0, 1)
        comps, secs = run(LocalExecutor(backend), reqs, args.batch_size)
        backend.close()
        toks = sum(c.completion_tokens for c in comps)
        out.update(local_s=round(secs, 1), local_tokens=toks, local_tok_s=round(toks / secs, 1),
                   local_with_start_tok_s=round(toks / (secs + out["local_engine_start_s"]), 1))

    ray_opts = RayOptions(address=args.address, replicas=args.replicas, batch_size=args.batch_size,
                          tensor_parallel_size=args.tensor_parallel_size, job_requests=4 * args.prompts)
    session = Session(ray_opts)
    try:
        engine = VllmRayEngine(model, opts, ray_opts, seed=0)
        one, secs1 = run(RayExecutor(engine, ray_opts), reqs, args.batch_size)
        two, secs2 = run(RayExecutor(engine, ray_opts), requests(2 * args.prompts, args.max_tokens), args.batch_size)
    finally:
        session.close()
    toks1, toks2 = sum(c.completion_tokens for c in one), sum(c.completion_tokens for c in two)
    rate = (toks2 - toks1) / max(secs2 - secs1, 1e-9)
    out.update(ray_s_n=round(secs1, 1), ray_s_2n=round(secs2, 1), ray_tokens_n=toks1, ray_tok_s=round(rate, 1),
               ray_start_s=round(secs1 - toks1 / rate, 1) if rate > 0 else None)
    if not args.skip_local:
        out["local_tokens_equal_ray"] = out["local_tokens"] == toks1
        out["ray_over_local_tok_s"] = round(rate / out["local_tok_s"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
