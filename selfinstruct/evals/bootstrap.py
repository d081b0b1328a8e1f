"""Seeded percentile bootstrap over prompts: a 95% interval for one model's metric, and for the
paired difference tuned - base (both models resampled with the same prompt indices, so the
prompt-to-prompt difficulty that they share cancels out).

A metric is a ratio of sums over prompts, sum(num) / sum(den): a plain mean when `den` is all ones
(prompt-level accuracy), the micro-average when `den` counts the instructions of each prompt
(instruction-level accuracy; see `ifbench.metric_vectors`). Pure functions of their inputs and seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
_CHUNK = 256  # resamples drawn at a time: memory stays at _CHUNK * n_prompts indices


@dataclass(frozen=True)
class Interval:
    estimate: float  # the metric on the prompts as given (not the bootstrap mean)
    low: float
    high: float
    confidence: float
    n_resamples: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def _vectors(num, den) -> tuple[np.ndarray, np.ndarray]:
    num = np.asarray(num, dtype=float)
    den = np.ones_like(num) if den is None else np.asarray(den, dtype=float)
    if num.ndim != 1 or den.shape != num.shape:
        raise ValueError(f"expected two 1-d vectors of one length, got shapes {num.shape} and {den.shape}")
    if num.size == 0:
        raise ValueError("no prompts to resample")
    if den.sum() <= 0:
        raise ValueError("the metric's denominator is zero: nothing was scored")
    return num, den


def _ratio(num_sums: np.ndarray, den_sums: np.ndarray) -> np.ndarray:
    # A resample that drew only unscored prompts has no value; it is left out of the percentiles.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den_sums > 0, num_sums / np.where(den_sums > 0, den_sums, 1), np.nan)


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")


def _resampled(vectors: list[tuple[np.ndarray, np.ndarray]], n_resamples: int, seed: int) -> list[np.ndarray]:
    """For each (num, den): the metric on each resample; every vector uses the same indices."""
    n = vectors[0][0].size
    rng = np.random.default_rng(seed)
    outs = [np.empty(n_resamples) for _ in vectors]
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        for out, (num, den) in zip(outs, vectors):
            out[start:start + size] = _ratio(num[idx].sum(axis=1), den[idx].sum(axis=1))
    return outs


def _interval(estimate: float, stats: np.ndarray, confidence: float, n_resamples: int, seed: int) -> Interval:
    stats = stats[~np.isnan(stats)]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Interval(float(estimate), float(low), float(high), confidence, n_resamples, seed)


def bootstrap_ci(num, den=None, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 confidence: float = 0.95) -> Interval:
    """Percentile interval of sum(num) / sum(den) over prompts resampled with replacement."""
    _check(n_resamples, confidence)
    num, den = _vectors(num, den)
    (stats,) = _resampled([(num, den)], n_resamples, seed)
    return _interval(num.sum() / den.sum(), stats, confidence, n_resamples, seed)


def paired_diff_ci(base_num, tuned_num, base_den=None, tuned_den=None, *,
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = 0.95) -> Interval:
    """Percentile interval of metric(tuned) - metric(base), prompt i of one model paired with
    prompt i of the other (the vectors must be aligned: see `ifbench.paired_vectors`)."""
    _check(n_resamples, confidence)
    base = _vectors(base_num, base_den)
    tuned = _vectors(tuned_num, tuned_den)
    if base[0].size != tuned[0].size:
        raise ValueError(f"paired vectors differ in length: {base[0].size} vs {tuned[0].size}")
    b, t = _resampled([base, tuned], n_resamples, seed)
    estimate = tuned[0].sum() / tuned[1].sum() - base[0].sum() / base[1].sum()
    return _interval(estimate, t - b, confidence, n_resamples, seed)
