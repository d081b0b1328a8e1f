"""A rule's verdict on a paired interval, in words: what the experiments (`rlvr`, `knowledge`) print
after their table. A claim holds only if the paired 95% interval of a - b on the suite's primary metric
lies entirely on the claimed side of 0; each verdict also names the smallest difference the run could
have told from 0 (the interval's half width), so "no" is read as "not shown at this size"."""
from __future__ import annotations

from dataclasses import dataclass
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
