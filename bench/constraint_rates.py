"""Which constraint types a model follows: every registered type on the same prompts, on a real vLLM engine.
For each of `--prompts` seed instructions (not classification tasks; shuffled with a fixed seed, with their
first input) and each type: one constraint of that type (parameters and phrasing drawn per prompt and
type), appended as `constrain` appends it, and `--k` sampled answers; plus `--base` answers to the
instruction without any constraint, checked against each type: its base rate. What README's "Verified
constraint data" quotes for the types `pipelines/verified.yaml` does not ask for.

    python bench/constraint_rates.py                       # the embedded model: 10 prompts x 18 types x 4
    python bench/constraint_rates.py --model M --prompts 50 --k 8 --max-tokens 512 --json rates.json

Prints one row per type: pass@1 (answers that pass), pass@K (prompts with at least one), base rate, and
how many answers were cut at --max-tokens (checked as they are, as verify checks them)."""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--k", type=int, default=4, help="answers per constrained prompt")
    ap.add_argument("--base", type=int, default=4, help="answers per prompt without a constraint")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    from vllm import SamplingParams

    from selfinstruct.backends.chat import chat_token_ids
    from selfinstruct.backends.vllm_engine import close_llm, engine_kwargs, start_llm
    from selfinstruct.constraints import Constraint, constraint_types
    from selfinstruct.generate.constrained import constrained_instruction
    from selfinstruct.io.formats import user_prompt
    from selfinstruct.io.seeds import load_seed_tasks
    from selfinstruct.models import resolve_model

    llm = start_llm(**engine_kwargs(resolve_model(a.model), max_model_len=2048, seed=42))
    tok = llm.get_tokenizer()
    tasks = [t for t in load_seed_tasks(ROOT / "seed_tasks" / "seed_tasks.jsonl") if not t.is_classification]
    random.Random(0).shuffle(tasks)
    types = constraint_types()
    reqs, meta = [], []  # (prompt index, constraint or None for a base answer)
    for ti, t in enumerate(tasks[:a.prompts]):
        inp = t.instances[0].input if t.instances else ""
        base = chat_token_ids(tok, [{"role": "user", "content": user_prompt(t.instruction, inp)}])
        reqs += [base] * a.base
        meta += [(ti, None)] * a.base
        for type_id, ct in types.items():
            rng = random.Random(f"{ti}:{type_id}")
            c = Constraint(type_id, ct.sample(rng))
            text = constrained_instruction(t.instruction, c.describe(rng))
            reqs += [chat_token_ids(tok, [{"role": "user", "content": user_prompt(text, inp)}])] * a.k
            meta += [(ti, c)] * a.k
    params = [SamplingParams(seed=7 + i, max_tokens=a.max_tokens, temperature=1.0, top_p=0.95)
              for i in range(len(reqs))]
    t0 = time.perf_counter()
    outs = llm.generate([{"prompt_token_ids": r} for r in reqs], params, use_tqdm=False)
    seconds = time.perf_counter() - t0
    close_llm(llm)

    base_answers: dict[int, list[str]] = {}
    for (ti, c), o in zip(meta, outs):
        if c is None:
            base_answers.setdefault(ti, []).append(o.outputs[0].text.strip())
    rows: dict[str, dict] = {}
    for (ti, c), o in zip(meta, outs):
        if c is None:
            continue
        d = rows.setdefault(c.id, {"answers": 0, "pass": 0, "cut": 0, "prompts": {}, "base": 0, "base_answers": 0})
        ok = c.check(o.outputs[0].text.strip())
        d["answers"] += 1
        d["pass"] += ok
        d["cut"] += o.outputs[0].finish_reason == "length"
        if ti not in d["prompts"]:
            d["base_answers"] += len(base_answers[ti])
            d["base"] += sum(c.check(x) for x in base_answers[ti])
        d["prompts"][ti] = d["prompts"].get(ti, False) or ok
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    print(f"model {a.model}: {len(reqs)} requests, {tokens} tokens, {seconds:.0f} s\n")
    print(f"| type | family | pass@1 | pass@{a.k} | base rate | cut |\n|---|---|---:|---:|---:|---:|")
    for type_id, d in rows.items():
        passk = sum(d["prompts"].values()) / len(d["prompts"])
        print(f"| `{type_id}` | {types[type_id].family} | {d['pass'] / d['answers']:.0%} | {passk:.0%} | "
              f"{d['base'] / d['base_answers']:.0%} | {d['cut']} |")
        d["passk"], d["n"] = sum(d["prompts"].values()), len(d["prompts"])
        del d["prompts"]
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
