"""Tokenization, the reference-exact ROUGE-L score, and the bounds the index prunes with.

Semantics are bit-identical to ``rouge_score`` 0.1.2,
``RougeScorer(["rougeL"], use_stemmer=False)``:

* :func:`tokenize` is ``rouge_score.tokenize.tokenize(text, None)``.
* The score of a candidate ``new`` against a pool member ``old`` is
  ``rouge_scorer._score_lcs(new_tokens, old_tokens).fmeasure`` (target = new,
  prediction = old): :func:`f_measure` repeats its float operations in the same order.

Token sequences are encoded for rapidfuzz as a ``str`` with one code point per token
id (:func:`id_to_char`, surrogates skipped), or as a tuple of ints beyond
:data:`MAX_CHR_IDS` distinct tokens; LCS lengths are exact either way.

Pruning: as a real number the score of a pair is ``2L/(m+n)``.  Every bound carries
a slack (:data:`EPS`): the float score differs from ``2L/(m+n)`` by a few ulps, so a
pair whose float score exceeds the threshold is never pruned.  Decisions always use
the reference float formula.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np
from rapidfuzz.distance import LCSseq

__all__ = [
    "TOKEN_RE",
    "tokenize",
    "f_measure",
    "f_measure_array",
    "MAX_CHR_IDS",
    "id_to_char",
    "char_to_id",
    "rouge_l_f",
    "EPS",
    "UNBOUNDED",
    "min_lcs",
    "min_lcs_array",
    "prefix_length",
    "Bounds",
]

# ---------------------------------------------------------------------------
# tokenization and the reference-exact score
# ---------------------------------------------------------------------------

# rouge_score.tokenize.tokenize(text, None) does:
#   text.lower(); re.sub(r"[^a-z0-9]+", " "); re.split(r"\s+"); keep r"^[a-z0-9]+$".
# After the substitution the string only holds [a-z0-9] runs separated by single
# spaces, so the result is exactly the list of maximal [a-z0-9]+ runs of text.lower().
TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Tokens exactly as ``rouge_score.tokenize.tokenize(text, None)`` returns them."""
    return TOKEN_RE.findall(text.lower())


def f_measure(lcs: int, new_len: int, old_len: int) -> float:
    """``rouge_scorer._score_lcs`` F for LCS length ``lcs`` of a (new, old) pair."""
    if new_len == 0 or old_len == 0:
        return 0.0
    precision = lcs / old_len
    recall = lcs / new_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def f_measure_array(lcs: np.ndarray, new_lens: np.ndarray, old_lens: np.ndarray) -> np.ndarray:
    """Vectorised :func:`f_measure` (same IEEE-754 operations, same order); lengths > 0."""
    lcs = lcs.astype(np.float64)
    precision = lcs / old_lens.astype(np.float64)
    recall = lcs / new_lens.astype(np.float64)
    total = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        f = 2 * precision * recall / total
    f[~(total > 0)] = 0.0
    return f


# Token ids are encoded as code points; surrogates (0xD800-0xDFFF) are skipped.
# Read as ``score.MAX_CHR_IDS`` at call time by the other modules (tests lower it).
MAX_CHR_IDS = 0x110000 - 0x800


def id_to_char(token_id: int) -> str:
    return chr(token_id if token_id < 0xD800 else token_id + 0x800)


def char_to_id(char: str) -> int:
    code = ord(char)
    return code if code < 0xD800 else code - 0x800


def rouge_l_f(new_tokens: Sequence[str], old_tokens: Sequence[str]) -> float:
    """Reference-exact ROUGE-L F of one pair (new = target, old = prediction).

    Equal to ``rouge_scorer._score_lcs(new_tokens, old_tokens).fmeasure``.
    """
    new_len, old_len = len(new_tokens), len(old_tokens)
    if new_len == 0 or old_len == 0:
        return 0.0
    ids: dict = {}
    new_ids = [ids.setdefault(t, len(ids)) for t in new_tokens]
    old_ids = [ids.setdefault(t, len(ids)) for t in old_tokens]
    if len(ids) <= MAX_CHR_IDS:
        lcs = LCSseq.similarity("".join(map(id_to_char, new_ids)), "".join(map(id_to_char, old_ids)))
    else:  # lists of small ints: rapidfuzz hashes an int to itself, still exact
        lcs = LCSseq.similarity(new_ids, old_ids)
    return f_measure(lcs, new_len, old_len)


# ---------------------------------------------------------------------------
# pruning bounds
# ---------------------------------------------------------------------------

# Slack for every bound.  The float score differs from the exact rational 2L/(m+n)
# by a relative error of a few ulps (< 1e-15), far below EPS, so a pair with
# float score > g always has L > (g - EPS) * (m + n) / 2, even after rounding.
EPS = 1e-9
# "no upper limit" for partner lengths
UNBOUNDED = 1 << 62


def min_lcs(g: float, m: int, n: int) -> int:
    """Smallest LCS length for which the score of an (m, n) pair can exceed g."""
    v = math.floor((g - EPS) * (m + n) / 2) + 1
    return v if v > 1 else 1


def min_lcs_array(g: float, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Vectorised :func:`min_lcs`."""
    v = np.floor((g - EPS) * (m + n) / 2).astype(np.int64) + 1
    return np.maximum(v, 1)


def _smallest_partner_len(g: float, m: int) -> int:
    """Smallest n <= max(m, 1) with min_lcs(g, m, n) <= n (the length filter).

    Feasibility is monotone in n because min_lcs grows by at most 1 per unit of n:
    binary search.
    """
    lo, hi = 1, max(m, 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if min_lcs(g, m, mid) <= mid:
            hi = mid
        else:
            lo = mid + 1
    return lo


def prefix_length(g: float, s: int) -> int:
    """Prefix length for a text of ``s`` tokens (the same for probing and indexing).

    alpha(s) = min over partner lengths n passing the length filter
    (min_lcs(g, s, n) <= min(s, n)) of min_lcs(g, s, n); two texts whose overlap
    reaches min_lcs share an element within their first ``s - alpha(s) + 1`` elements.
    """
    if s <= 0 or min_lcs(g, s, s) > s:
        return 0
    # min_lcs is nondecreasing in n: the smallest feasible n gives the minimum
    alpha = min_lcs(g, s, _smallest_partner_len(g, s))
    return min(s, s - alpha + 1)


class Bounds:
    """Per-threshold pruning bounds, cached by text length.

    ``verify_above`` (g): every pair that could score above g must be verified.
    ``max_distance``: cutoff on the normalized Indel distance (m + n - 2 LCS) / (m + n);
    a pair can score above g only below it.
    """

    def __init__(self, verify_above: float):
        self.verify_above = verify_above
        # a pair can score above g only if dist / (m + n) < 1 - g (up to float
        # rounding): cut at 1 - g + 1e-6
        self.max_distance = min(1.0, 1.0 - verify_above + 1e-6)
        self._prefix_lens: list[int] = []
        self._geometry: dict[int, tuple] = {}

    def prefix_len(self, length: int) -> int:
        """:func:`prefix_length` for this g (cached)."""
        cache = self._prefix_lens
        if length >= len(cache):
            g = self.verify_above
            cache.extend(prefix_length(g, s) for s in range(len(cache), max(length + 1, 2 * len(cache))))
        return cache[length]

    def prefix_lens(self, lengths: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`prefix_len`."""
        if len(lengths):
            self.prefix_len(int(lengths.max()))
        return np.asarray(self._prefix_lens, dtype=np.int64)[lengths]

    def geometry(self, m: int) -> tuple:
        """(core_len, min_partner_len, max_partner_len_by_position) for texts of length m.

        core_len: prefix positions j < core_len go to the "core" postings.
        A partner of length n can reach the threshold via a first shared element at
        prefix position i of this text only if
        min_partner_len <= n <= max_partner_len_by_position[i] (length filter and
        positional filter: min_lcs(g, m, n) <= min(n, m - i)).  A plain tuple: the
        search unpacks it in its hot loop.
        """
        geo = self._geometry.get(m)
        if geo is None:
            g = self.verify_above
            core_len = m - min_lcs(g, m, m) + 1 if min_lcs(g, m, m) <= m else 0
            max_by_position = []
            for i in range(self.prefix_len(m)):
                room = m - i  # largest n with min_lcs(g, m, n) <= room (nondecreasing in n)
                if min_lcs(g, m, UNBOUNDED) <= room:
                    max_by_position.append(UNBOUNDED)
                    continue
                lo, hi = 0, 1
                while min_lcs(g, m, hi) <= room:
                    hi *= 2
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if min_lcs(g, m, mid) <= room:
                        lo = mid
                    else:
                        hi = mid
                max_by_position.append(lo)
            geo = self._geometry[m] = (core_len, _smallest_partner_len(g, m), max_by_position)
        return geo
