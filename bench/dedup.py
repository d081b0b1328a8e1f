"""Benchmark: exact ROUGE-L dedup (selfinstruct.dedup.dedup) vs Alpaca's method.

    python bench/dedup.py [--sizes 2000,10000,50000] [--million] [--threshold 0.7]

Data (deterministic, ``--seed``, default 0): the 175 real Self-Instruct seed
instructions from ``../shared/data/self_instruct_seed_tasks.jsonl`` expanded to N
instruction-like texts (5-40 tokens):

* 65% "recombinations": the first part of one seed instruction joined to the second
  part of another; then each word is replaced with probability 0.35 by a word drawn
  from a Zipf(1.0) vocabulary (the seeds' own words, most frequent first, followed
  by 100,000 deterministic pseudo-words) so the vocabulary keeps growing with N the
  way it does for model-generated instructions;
* 35% "near-duplicates": a copy of an earlier generated text (uniformly chosen) with
  1-3 edits (swap two neighbouring words, delete, insert a Zipf word, repeat a word,
  replace a word, change case / punctuation).

The pool is pre-loaded with the 175 seeds (as Alpaca does) and the N texts are
deduplicated greedily in order with threshold 0.7.

Baseline = stanford_alpaca ``generate_instruction.py``: for each candidate
``pool.map(partial(rouge_scorer._score_lcs, new_tokens), all_instruction_tokens)``
with a ``multiprocessing.Pool(os.cpu_count())`` (created once here, which only
helps the baseline), keep when ``max(fmeasure) <= 0.7``.  When the full baseline
would take too long it is timed on windows of consecutive candidates (at the start,
middle and end of the sequence, each started from the exact pool state at that
point); the per-candidate cost is fitted as ``a + b * pool_size`` and summed over
all N candidates using the pool sizes of the (identical) greedy run.  Those numbers
are marked "extrapolated".  Kept/dropped decisions are compared with ours on every
candidate the baseline processed.

Ours = ``selfinstruct.dedup.dedup(texts, pool=seeds)``, wall time including
tokenization, median of 3 runs (one run for ``--million``).  The data generation is
not timed.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import random
import statistics
import sys
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfinstruct.dedup import dedup  # noqa: E402

SEED_FILE = ROOT.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def load_seeds(path: Path = SEED_FILE) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["instruction"] for line in f if line.strip()]


def _pseudo_words(n: int, rng: random.Random) -> list[str]:
    cons = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl pr sh st th tr".split()
    vows = "a e i o u ai ea ee io ou".split()
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.choice((2, 2, 3, 3, 4))))
        if rng.random() < 0.3:
            w += rng.choice("nrstlmdk")
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def make_data(n: int, seeds: list[str], seed: int = 0) -> list[str]:
    """N deterministic instruction-like texts (see module docstring)."""
    rng = random.Random(seed)
    seed_words = [s.split() for s in seeds]
    freq: dict[str, int] = {}
    for ws in seed_words:
        for w in ws:
            w = w.strip(".,?!:;\"'()").lower()
            if w:
                freq[w] = freq.get(w, 0) + 1
    real = sorted(freq, key=lambda w: (-freq[w], w))
    vocab = real + _pseudo_words(100_000, random.Random(seed + 1))
    cum = []
    acc = 0.0
    for r in range(len(vocab)):
        acc += 1.0 / (r + 1)
        cum.append(acc)
    total = cum[-1]

    def zipf_word() -> str:
        return vocab[min(bisect.bisect_left(cum, rng.random() * total), len(vocab) - 1)]

    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.35:
            w = out[rng.randrange(len(out))].split()
            for _ in range(rng.randint(1, 3)):
                op = rng.randrange(7)
                p = rng.randrange(len(w))
                if op == 0 and len(w) > 1:
                    q = min(p + 1, len(w) - 1)
                    w[p], w[q] = w[q], w[p]
                elif op == 1 and len(w) > 5:
                    del w[p]
                elif op == 2:
                    w.insert(p, zipf_word())
                elif op == 3:
                    w.insert(p, w[p])
                elif op == 4:
                    w[p] = zipf_word()
                elif op == 5:
                    w[p] = w[p].upper() if rng.random() < 0.5 else w[p].capitalize()
                else:
                    w[p] = w[p] + rng.choice(",.;:!?")
            out.append(" ".join(w[:40]))
        else:
            a, b = rng.choice(seed_words), rng.choice(seed_words)
            w = a[: rng.randint(1, len(a))] + b[rng.randint(0, len(b) - 1) :]
            while len(w) < 5:
                w += rng.choice(seed_words)[:3]
            w = [zipf_word() if rng.random() < 0.35 else x for x in w[:40]]
            w[0] = w[0].capitalize()
            out.append(" ".join(w))
    return out


# ---------------------------------------------------------------------------
# baseline (Alpaca)
# ---------------------------------------------------------------------------


def baseline_window(proc_pool, scorer, rouge_scorer, pool_tokens, texts, start, stop, budget_s, threshold):
    """Alpaca's greedy loop on texts[start:stop] from the given pool of token lists.

    Stops early after budget_s.  Returns (per-candidate (pool_size, seconds), dup flags).
    """
    all_tokens = list(pool_tokens)
    timings = []
    dups = []
    t_begin = time.perf_counter()
    for i in range(start, stop):
        t0 = time.perf_counter()
        pool_size = len(all_tokens)
        new_tokens = scorer._tokenizer.tokenize(texts[i])
        rouge_scores = proc_pool.map(partial(rouge_scorer._score_lcs, new_tokens), all_tokens)
        rouge_scores = [score.fmeasure for score in rouge_scores]
        dup = max(rouge_scores) > threshold
        if not dup:
            all_tokens.append(new_tokens)
        t1 = time.perf_counter()
        timings.append((pool_size, t1 - t0))
        dups.append(dup)
        if t1 - t_begin > budget_s:
            break
    return timings, dups


def fit_cost(timings):
    """Least squares seconds = a + b * pool_size."""
    n = len(timings)
    sx = sum(k for k, _ in timings)
    sy = sum(t for _, t in timings)
    sxx = sum(k * k for k, _ in timings)
    sxy = sum(k * t for k, t in timings)
    den = n * sxx - sx * sx
    b = (n * sxy - sx * sy) / den if den else 0.0
    a = (sy - b * sx) / n
    if b <= 0:  # degenerate fit: plain proportional model
        a, b = 0.0, sy / max(sx, 1)
    return a, b


def run_size(n, seeds, threshold, budget_s, seed, proc_pool, results, repeats=3):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    texts = make_data(n, seeds, seed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours = dedup(texts, threshold=threshold, pool=seeds)
        times.append(time.perf_counter() - t0)
    ours_s = statistics.median(times)
    our_dup = [m.duplicate for m in ours]
    kept = n - sum(our_dup)
    # pool size seen by each candidate in the greedy run
    pool_sizes = []
    k = len(seeds)
    for d in our_dup:
        pool_sizes.append(k)
        k += 0 if d else 1
    seed_tokens = [scorer._tokenizer.tokenize(s) for s in seeds]

    def tokens_before(i):
        return seed_tokens + [scorer._tokenizer.tokenize(texts[j]) for j in range(i) if not our_dup[j]]

    # full run if the crude estimate fits the budget, else windows
    t_full = time.perf_counter()
    timings, dups = baseline_window(proc_pool, scorer, rouge_scorer, seed_tokens, texts, 0, n, budget_s, threshold)
    measured_s = time.perf_counter() - t_full
    compared = len(dups)
    identical = dups == our_dup[:compared]
    if compared == n:
        base_s = measured_s
        how = "measured (full run)"
    else:
        windows = [(0, compared)]
        for frac in (0.5, 0.95):
            s = int(n * frac)
            tw, dw = baseline_window(
                proc_pool, scorer, rouge_scorer, tokens_before(s), texts, s, n, budget_s / 2, threshold
            )
            timings += tw
            identical = identical and dw == our_dup[s : s + len(dw)]
            compared += len(dw)
            measured_s += sum(t for _, t in tw)
            windows.append((s, s + len(dw)))
        a, b = fit_cost(timings)
        base_s = sum(a + b * ps for ps in pool_sizes)
        how = (
            f"extrapolated: {compared} candidates timed in windows {windows} "
            f"({measured_s:.0f}s), fit {a * 1e3:.2f} ms + {b * 1e6:.2f} us x pool_size, summed over all {n}"
        )
    row = {
        "n": n,
        "kept": kept,
        "baseline_s": base_s,
        "baseline_how": how,
        "ours_s": ours_s,
        "ours_runs_s": times,
        "ratio": base_s / ours_s,
        "identical": identical,
        "compared": compared,
    }
    results.append(row)
    print(
        f"N={n:>9,}  kept={kept:>9,}  baseline={base_s:10.1f}s  ours={ours_s:8.3f}s  "
        f"ratio={base_s / ours_s:10.0f}x  identical={identical} (on {compared:,} candidates)\n"
        f"    ours: median of {len(times)} runs ({', '.join(f'{t:.3f}' for t in times)} s)\n"
        f"    baseline: {how}",
        flush=True,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,10000,50000")
    ap.add_argument("--million", action="store_true", help="also time ours on 1,000,000 texts")
    ap.add_argument("--only-million", action="store_true", help="only the 1,000,000 run")
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--budget", type=float, default=180.0, help="baseline seconds per size before extrapolating")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write results as JSON to this file")
    args = ap.parse_args(argv)

    seeds = load_seeds()
    cpus = os.cpu_count()
    print(f"machine: {_cpu_model()}, {cpus} cores, Python {platform.python_version()}, load average {_load()}")
    results: list[dict] = []
    if not args.only_million:
        with Pool(cpus) as proc_pool:
            for n in [int(x) for x in args.sizes.split(",") if x]:
                run_size(n, seeds, args.threshold, args.budget, args.seed, proc_pool, results)
    if args.million or args.only_million:
        n = 1_000_000
        t0 = time.perf_counter()
        texts = make_data(n, seeds, args.seed)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = dedup(texts, threshold=args.threshold, pool=seeds)
        ours_s = time.perf_counter() - t0
        kept = sum(not m.duplicate for m in res)
        print(f"N={n:,}: ours={ours_s:.1f}s kept={kept:,} (data generation {gen_s:.1f}s, not counted)", flush=True)
        results.append({"n": n, "ours_s": ours_s, "kept": kept})
    print(f"load average at the end: {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
