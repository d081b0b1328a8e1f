"""How long an in-process vLLM engine takes to start, and how fast it decodes, eager vs compiled
(torch.compile), on this machine, with the embedded model. Each mode runs in a fresh process (a start
pays what a user's `selfinstruct generate` pays; vLLM's compile cache under ~/.cache/vllm is warm after
the first compiled start, so pass --cold to point it at an empty folder).

    python bench/engine_start.py [--prompts 64] [--max-tokens 256] [--cold]

Prints one row per mode: start seconds, decode seconds and tokens/s for `--prompts` prompts of
`--max-tokens` tokens each (ignore_eos, so both modes decode the same number of tokens)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(eager: bool, prompts: int, max_tokens: int) -> dict:
    from vllm import SamplingParams

    from selfinstruct.backends.vllm_engine import close_llm, engine_kwargs, start_llm
    from selfinstruct.models import prepare_embedded_model

    path = str(prepare_embedded_model())
    t0 = time.perf_counter()
    llm = start_llm(**engine_kwargs(path, max_model_len=2048, enforce_eager=eager))
    t1 = time.perf_counter()
    params = SamplingParams(max_tokens=max_tokens, temperature=0.7, seed=1, ignore_eos=True)
    outs = llm.generate(["Write a poem about the sea."] * prompts, params, use_tqdm=False)
    t2 = time.perf_counter()
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    close_llm(llm)
    return {"eager": eager, "start_s": round(t1 - t0, 1), "decode_s": round(t2 - t1, 1), "tokens": tokens,
            "tokens_per_s": round(tokens / (t2 - t1), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--cold", action="store_true", help="an empty vLLM compile cache for the compiled start")
    ap.add_argument("--one", choices=("eager", "compiled"), help=argparse.SUPPRESS)  # the child process
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one == "eager", a.prompts, a.max_tokens)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for mode in ("eager", "compiled"):
            env = dict(os.environ, VLLM_CACHE_ROOT=cache) if a.cold else dict(os.environ)
            out = subprocess.run([sys.executable, __file__, "--one", mode, "--prompts", str(a.prompts),
                                  "--max-tokens", str(a.max_tokens)], env=env, capture_output=True, text=True,
                                 check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| mode | start (s) | decode (s) | tokens | tokens/s |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {'eager' if r['eager'] else 'compiled'} | {r['start_s']} | {r['decode_s']} | {r['tokens']} | "
              f"{r['tokens_per_s']} |")
    e, c = rows
    print(f"\ncompiled / eager: start x{c['start_s'] / e['start_s']:.2f}, tokens/s x{c['tokens_per_s'] / e['tokens_per_s']:.2f}")


if __name__ == "__main__":
    main()
