"""What the experiments (`rlvr`, `knowledge`) print after their table: the answers' statistics per suite
and model (short, empty or repetitive answers explain many a score), and a rule's verdict on a paired
interval, in words. A claim holds only if the paired 95% interval of a - b on the suite's primary metric
lies entirely on the claimed side of 0; each verdict also names the smallest difference the run could
have told from 0 (the interval's half width), so "no" is read as "not shown at this size"."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ablate.command import PRIMARY


@dataclass(frozen=True)
class Claim:
    suite: str
    a: str
    b: str
    sign: int  # +1: a - b above 0; -1: below 0
    says: str  # the claim in words

    @property
    def key(self) -> str:
        return f"{self.a} - {self.b}"


def verdict(summary: dict[str, Any], claim: Claim) -> str:
    res = summary["suites"].get(claim.suite)
    metric = PRIMARY[claim.suite]
    iv = (res or {}).get("differences", {}).get(claim.key, {}).get(metric)
    if not iv or iv.get("low") is None:
        return f"{claim.says}: no verdict (no interval of {claim.key} on {claim.suite})"
    holds = iv["low"] > 0 if claim.sign > 0 else iv["high"] < 0
    return (f"{claim.says}: {'shown' if holds else 'not shown'} ({claim.key} {100 * iv['estimate']:+.1f} "
            f"[{100 * iv['low']:+.1f}, {100 * iv['high']:+.1f}] points on {claim.suite} {metric}; the smallest "
            f"difference this run could tell from 0: {100 * (iv['high'] - iv['low']) / 2:.1f} points)")


def answer_stats(texts: list[str]) -> dict[str, float]:
    """Mean words; the shares of empty answers and of repetitive ones (under half of the word 4-grams
    distinct, among answers with at least 8 of them)."""
    def repetitive(t: str) -> bool:
        w = t.split()
        grams = [tuple(w[i:i + 4]) for i in range(len(w) - 3)]
        return len(grams) >= 8 and len(set(grams)) < len(grams) / 2
    n = len(texts) or 1
    return {"mean_words": sum(len(t.split()) for t in texts) / n,
            "empty_share": sum(not t.strip() for t in texts) / n,
            "repetitive_share": sum(repetitive(t) for t in texts) / n}


def answers_per_suite(summary: dict[str, Any], labels: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Suite -> model -> answer_stats of its answers (from the suite's side-by-side file) and the share cut off."""
    out: dict[str, dict[str, Any]] = {}
    for suite, res in summary["suites"].items():
        rows = [json.loads(x) for x in Path(res["output"]).read_text(encoding="utf-8").splitlines() if x.strip()]
        cut = res["notes"].get("cut_off_share") or {}
        out[suite] = {m: {**answer_stats([str(r.get(m) or "") for r in rows]), "cut_off_share": cut.get(m)}
                      for m in labels}
    return out
