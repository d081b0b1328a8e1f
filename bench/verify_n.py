"""The verify stage's requests two ways, on a real vLLM engine: K seeded requests per constrained prompt
(what `verify` asks: seeds s, s+1, ..., s+K-1, the same prompt, so the prefix cache computes it once) vs
one request with `SamplingParams(n=K, seed=s)` per prompt. vLLM 0.32 splits an `n = K` request into K
child requests seeded s..s+K-1 (vllm/v1/engine/parallel_sampling.py), so both should give the same
answers; this measures completion tokens/s of each and checks that they do.

    python bench/verify_n.py                                   # the embedded model, 32 prompts, K = 8
    python bench/verify_n.py --model Qwen/Qwen2.5-7B-Instruct --prompts 256 --max-tokens 512
    python bench/verify_n.py --repeats 3 --json bench/verify_n.json

The prompts are the seed tasks' instructions with one to two constraints from the constraint library
appended, exactly as the `constrain` stage words them (seeded per prompt), rendered with the model's chat
template. Each repeat runs both modes on one engine, alternating which goes first, with the prefix cache
emptied before each mode (`LLM.reset_prefix_cache`), so neither finds the other's prompts cached. Every
mode queues all of its requests in one `LLM.generate` call, as the stage keeps the engine's queue full.

Prints a table (seconds, completion tokens, tokens/s per mode and repeat; medians), whether every answer
is identical in both modes, and the decision rule of issue #24: `n` is worth using only if it is at least
10% faster (`n tokens/s >= 1.10 x` the seeded requests'). Exit code 1 when the answers differ."""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THRESHOLD = 1.10  # n must be at least this much faster (tokens/s) to be used


def prompts(n: int, seed: int) -> list[tuple[list[dict[str, str]], int]]:
    """(chat messages, s) for the first `n` seed tasks, each with constraints appended as `constrain` does."""
    from selfinstruct.generate.constrained import attach, draw
    from selfinstruct.generate.stages.verify import first_seed, prompt_for
    from selfinstruct.io.records import Instance, Record
    from selfinstruct.io.seeds import load_seed_tasks

    out = []
    for task in load_seed_tasks(ROOT / "seed_tasks" / "seed_tasks.jsonl")[:n]:
        r = Record(id=task.id, instruction=task.instruction,
                   instances=[Instance(i.input, i.output) for i in task.instances[:1]])
        rng = random.Random(f"{seed}:{task.id}")
        attach(r, draw(rng, 2), rng)
        out.append((prompt_for(r, r.instruction), first_seed(seed, "verify", r.id)))
    return out


def run_mode(llm, inputs, k: int, mode: str, sampling: dict) -> tuple[float, int, list[list[str]]]:
    """Seconds, completion tokens and each prompt's K answers (in k order) of one mode."""
    from vllm import SamplingParams

    llm.reset_prefix_cache()
    if mode == "seeded":
        reqs = [ids for ids, _ in inputs for _ in range(k)]
        params = [SamplingParams(n=1, seed=s + j, **sampling) for _, s in inputs for j in range(k)]
    else:
        reqs = [ids for ids, _ in inputs]
        params = [SamplingParams(n=k, seed=s, **sampling) for _, s in inputs]
    t0 = time.perf_counter()
    outs = llm.generate([{"prompt_token_ids": ids} for ids in reqs], params, use_tqdm=False)
    seconds = time.perf_counter() - t0
    tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
    if mode == "seeded":
        texts = [[outs[i * k + j].outputs[0].text for j in range(k)] for i in range(len(inputs))]
    else:
        texts = [[c.text for c in sorted(o.outputs, key=lambda c: c.index)] for o in outs]
    return seconds, tokens, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct", help="HF id, folder or embedded alias")
    ap.add_argument("--prompts", type=int, default=32, help="constrained prompts (the first N seed tasks, at most 220)")
    ap.add_argument("--k", type=int, default=8, help="answers per prompt (K)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=42, help="the run seed the per-prompt seeds derive from")
    ap.add_argument("--repeats", type=int, default=2, help="runs of both modes, alternating which goes first")
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--json", type=Path, help="also write the rows and the verdict here")
    a = ap.parse_args()

    from selfinstruct.backends.chat import chat_token_ids
    from selfinstruct.backends.vllm_engine import close_llm, engine_kwargs, start_llm
    from selfinstruct.models import resolve_model

    path = resolve_model(a.model)
    llm = start_llm(**dict(engine_kwargs(path, max_model_len=a.max_model_len, seed=a.seed),
                           enable_prefix_caching=True))
    tok = llm.get_tokenizer()
    inputs = [(chat_token_ids(tok, msgs), s) for msgs, s in prompts(a.prompts, a.seed)]
    sampling = {"max_tokens": a.max_tokens, "temperature": a.temperature, "top_p": a.top_p}
    run_mode(llm, inputs[:2], 2, "seeded", sampling)  # warm-up (not timed)
    rows, answers = [], {}
    for rep in range(a.repeats):
        for mode in (("seeded", "n") if rep % 2 == 0 else ("n", "seeded")):
            seconds, tokens, texts = run_mode(llm, inputs, a.k, mode, sampling)
            answers.setdefault(mode, texts)
            if texts != answers[mode]:
                print(f"warning: {mode} gave other answers on repeat {rep + 1} (not deterministic here)")
            rows.append({"repeat": rep + 1, "mode": mode, "seconds": round(seconds, 2), "tokens": tokens,
                         "tokens_per_s": round(tokens / seconds, 1)})
    close_llm(llm)

    same = answers["seeded"] == answers["n"]
    differ = sum(x != y for p, q in zip(answers["seeded"], answers["n"]) for x, y in zip(p, q))
    med = {m: statistics.median(r["tokens_per_s"] for r in rows if r["mode"] == m) for m in ("seeded", "n")}
    ratio = med["n"] / med["seeded"]
    use_n = ratio >= THRESHOLD
    print(f"model {a.model}, {a.prompts} prompts x K={a.k}, max_tokens {a.max_tokens}, temperature "
          f"{a.temperature}, top_p {a.top_p}\n")
    print("| repeat | mode | seconds | completion tokens | tokens/s |\n|---:|---|---:|---:|---:|")
    for r in rows:
        label = f"{a.k} seeded requests" if r["mode"] == "seeded" else f"one n={a.k} request"
        print(f"| {r['repeat']} | {label} | {r['seconds']} | {r['tokens']} | {r['tokens_per_s']} |")
    print(f"\nmedian tokens/s: seeded {med['seeded']:.1f}, n {med['n']:.1f}; n / seeded = x{ratio:.3f}")
    print(f"identical answers: {'yes' if same else f'no ({differ} of {a.prompts * a.k} differ)'}")
    print(f"verdict: {'use n' if use_n else 'keep K seeded requests'} (n is used only if >= x{THRESHOLD:.2f})")
    if a.json:
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows,
                                      "median_tokens_per_s": med, "ratio": ratio, "identical": same,
                                      "differ": differ, "use_n": use_n}, indent=2) + "\n")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
