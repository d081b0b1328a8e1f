"""Generation throughput: the pipeline's bootstrap stage end to end vs raw vLLM on the exact same
prompts, and HF transformers `generate` on those prompts, all in one run on one machine.

    python bench/generate.py [--num-instructions 256] [--requests-per-round 16] [--hf-prompts 8]
                             [--skip-one-round]

Prints tokens/s and ratios. "raw vLLM" sends every prompt the pipeline sent in one `LLM.generate`
call (the engine's queue is as full as it gets); the pipeline's overhead is how much slower the
bootstrap stage is per generated token: parsing, filtering, ROUGE-L and shard commits, answers that
arrive after the target is reached, and the look-ahead rule (round r is built once round
r - overlap_depth is committed), against a baseline that knows every prompt in advance.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Recorder:
    """Wraps the real backend and remembers the requests in the order the pipeline started them. The
    stage processes results in that order, so the first `counts["requests"]` of them (the stage's
    manifest) are the ones whose answers it used; requests aborted or finished after the target was
    reached count in the pipeline's time, not in its tokens."""

    def __init__(self, inner):
        self.inner, self.requests = inner, []
        self.model, self.kind = inner.model, inner.kind

    def start(self, request):
        self.requests.append(request)
        return self.inner.start(request)

    def poll(self):
        return self.inner.poll()

    def abort(self, handles):
        self.inner.abort(handles)

    def capacity(self, request):
        return self.inner.capacity(request)

    def close(self):
        pass


def pipeline_run(cfg, backend, depth: int):
    from selfinstruct.generate.pipeline import run_pipeline

    cfg = copy.deepcopy(cfg)
    cfg.bootstrap.overlap_depth = depth
    rec = Recorder(backend)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run_pipeline(cfg, Path(d) / "run", quiet=True, backend=rec)
        dt = time.perf_counter() - t
        counts = json.loads((Path(d) / "run" / "bootstrap" / "manifest.json").read_text())["counts"]
    used = rec.requests[: counts["requests"]]
    return used, counts["completion_tokens"], len(rec.requests), dt


def raw_vllm(backend, requests):
    from vllm import SamplingParams

    prompts = [backend.engine_input(r.prompt) for r in requests]  # what the pipeline sends the engine
    params = [SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                             stop=r.stop or None, seed=r.seed) for r in requests]
    t = time.perf_counter()
    outs = backend.llm.generate(prompts, params, use_tqdm=False)
    dt = time.perf_counter() - t
    return sum(len(o.outputs[0].token_ids) for o in outs), dt


def hf_generate(model_path, requests, batch_size=8):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    torch.manual_seed(0)
    n_tokens, t = 0, time.perf_counter()
    for i in range(0, len(requests), batch_size):
        chunk = requests[i:i + batch_size]
        enc = tok([r.prompt for r in chunk], return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=chunk[0].max_tokens, do_sample=True,
                                 temperature=chunk[0].temperature, top_p=chunk[0].top_p,
                                 stop_strings=chunk[0].stop or None, tokenizer=tok, pad_token_id=tok.pad_token_id)
        gen = out[:, enc["input_ids"].shape[1]:]
        n_tokens += int((gen != tok.pad_token_id).sum())
    return n_tokens, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "pipelines" / "default.yaml"))
    ap.add_argument("--num-instructions", type=int, default=256)
    ap.add_argument("--requests-per-round", type=int, default=16)
    ap.add_argument("--hf-prompts", type=int, default=8, help="prompts for the transformers baseline (0: skip)")
    ap.add_argument("--skip-one-round", action="store_true", help="skip the look-ahead-1 pipeline run (long runs)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from selfinstruct.backends.vllm_engine import VllmBackend
    from selfinstruct.generate.config import load_config
    from selfinstruct.models import resolve_model

    cfg = load_config(args.config)
    cfg.stages = ["bootstrap"]
    cfg.bootstrap.num_instructions = args.num_instructions
    cfg.bootstrap.requests_per_round = args.requests_per_round
    model = resolve_model(cfg.model)
    t = time.perf_counter()
    backend = VllmBackend(model, cfg.vllm, seed=cfg.seed)
    startup = time.perf_counter() - t
    depth = cfg.bootstrap.overlap_depth
    raw_vllm(backend, pipeline_run(cfg, backend, depth)[0][:8])  # warm-up

    rows = []
    used, tokens, started, dt = pipeline_run(cfg, backend, depth)
    rows.append((f"pipeline bootstrap (look-ahead {depth} rounds, default)", tokens, dt))
    tok, dtr = raw_vllm(backend, used)
    rows.append(("raw vLLM, same prompts, one generate call", tok, dtr))
    if not args.skip_one_round:
        _, tokens1, _, dt1 = pipeline_run(cfg, backend, 1)
        rows.append(("pipeline bootstrap (look-ahead 1 round)", tokens1, dt1))
    backend.close()
    if args.hf_prompts:
        tok, dth = hf_generate(model, used[: args.hf_prompts])
        rows.append((f"HF transformers generate (first {args.hf_prompts} prompts, batch 8)", tok, dth))

    raw_tps = rows[1][1] / rows[1][2]
    print(f"model: {cfg.model}   engine start-up: {startup:.1f}s   requests used: {len(used)} "
          f"(started: {started})")
    print(f"{'':<58}{'tokens':>8}{'seconds':>9}{'tok/s':>9}{'vs raw vLLM':>13}")
    for name, n, s in rows:
        print(f"{name:<58}{n:>8}{s:>9.1f}{n / s:>9.1f}{(n / s) / raw_tps:>12.2f}x")
    over = 1 - (rows[0][1] / rows[0][2]) / raw_tps
    print(f"pipeline overhead vs raw vLLM: {over * 100:.1f}% (target < 5%); raw vLLM generated "
          f"{'the same' if rows[1][1] == rows[0][1] else 'a different'} number of tokens on the same seeded prompts")
    if args.json:
        Path(args.json).write_text(json.dumps([{"name": n, "tokens": t, "seconds": s} for n, t, s in rows], indent=2))


if __name__ == "__main__":
    main()
