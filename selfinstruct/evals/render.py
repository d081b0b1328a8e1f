"""The evaluation summary for people: a terminal table per suite (each model's metrics with their 95%
intervals, and the paired differences against the base model), and an HTML page with a bar chart per
suite (models side by side, intervals drawn)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from ..io.jsonl import atomic_write_text

NAMES = {"rouge_l": "ROUGE-L", "win_rate": "win rate (ties half)", "contains": "answer contains a reference span",
         "f1": "token F1 vs the reference", "judge_correct": "correct, says the judge"}


def _iv(d: dict[str, Any] | None, pct: bool = True) -> str:
    if not d or d.get("estimate") is None:
        return "-"
    f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.3f}")
    return f"{f(d['estimate'])} [{f(d['low'])}, {f(d['high'])}]"


def _rows(name: str, suite: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    pct = name != "reference"
    metrics = suite["metrics"]
    labels = list(metrics)
    keys = list(next(iter(metrics.values()), {}))
    head = ["metric", *labels, *suite["differences"]]
    rows = [[NAMES.get(k, k), *[_iv(metrics[m].get(k), pct) for m in labels],
             *[_iv(d.get(k), pct) for d in suite["differences"].values()]] for k in keys]
    if not keys:  # pairwise: only differences
        keys = sorted({k for d in suite["differences"].values() for k in d})
        rows = [[NAMES.get(k, k), *[_iv(d.get(k), pct) for d in suite["differences"].values()]] for k in keys]
        head = ["metric", *suite["differences"]]
    return head, rows


def format_table(summary: dict[str, Any]) -> str:
    out = []
    for name, suite in summary["suites"].items():
        head, rows = _rows(name, suite)
        w = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        out.append(f"{name} ({suite['prompts']} prompts; 95% bootstrap intervals; side by side -> {suite['output']})")
        out += ["  " + "  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in [head, *rows]]
        notes = suite["notes"]
        cut = notes.get("cut_off_share") or {}
        if cut:
            out.append("  cut off at max_new_tokens: " + ", ".join(f"{m} {100 * v:.0f}%" for m, v in cut.items()))
        skipped = {m: n.get("instructions_skipped") for m, n in notes.items() if isinstance(n, dict)
                   and n.get("instructions_skipped")}
        if skipped:
            out.append("  instructions skipped (not scorable offline): " + ", ".join(f"{m} {v}" for m, v in skipped.items()))
        for key, n in notes.items():
            if isinstance(n, dict) and "win_rate" in n:
                out.append(f"  {key}: {n['wins']} wins, {n['ties']} ties, {n['losses']} losses; "
                           f"{n['unparseable_verdicts']} unparseable verdicts")
    losses = {m: v["eval_loss"] for m, v in summary["models"].items() if v.get("eval_loss") is not None}
    if "reference" in summary["suites"]:
        out.append("eval loss: " + (", ".join(f"{m} {v:.4f}" for m, v in losses.items()) or "-"))
    return "\n".join(out)


def _chart(name: str, suite: dict[str, Any]) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the report extra is not installed: tables only
        return None
    series = suite["metrics"] or {k: v for k, v in suite["differences"].items()}
    if not series:
        return None
    keys = list(next(iter(series.values())))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(keys), 3.2))
    width = 0.8 / len(series)
    for j, (label, ms) in enumerate(series.items()):
        est = [ms[k]["estimate"] or 0 for k in keys]
        err = [[e - (ms[k]["low"] or 0) for e, k in zip(est, keys)], [(ms[k]["high"] or 0) - e for e, k in zip(est, keys)]]
        ax.bar([i + j * width for i in range(len(keys))], est, width, yerr=err, capsize=3, label=label)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(keys))], keys, fontsize=8)
    ax.set_title(name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_html(summary: dict[str, Any], path: Path) -> Path:
    parts = ["<!doctype html><meta charset=utf-8><title>selfinstruct evaluation</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto}td,th{padding:2px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}</style><h1>Evaluation</h1>",
             "<p>" + ", ".join(f"{html.escape(k)}: {html.escape(v['model'])} ({v['engine']})"
                               for k, v in summary["models"].items()) + "</p>"]
    for name, suite in summary["suites"].items():
        head, rows = _rows(name, suite)
        parts.append(f"<h2>{html.escape(name)}</h2><p>{suite['prompts']} prompts; 95% paired bootstrap intervals</p>")
        png = _chart(name, suite)
        if png:
            parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{png}">')
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                     + "</table>")
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
