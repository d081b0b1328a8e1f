"""Exact, fast ROUGE-L near-duplicate filtering.

Semantics are bit-identical to the filter used by Self-Instruct / Stanford Alpaca
(``rouge_score`` 0.1.2, ``RougeScorer(["rougeL"], use_stemmer=False)``):

* :func:`tokenize` is ``rouge_score.tokenize.tokenize(text, None)``.
* The score of a candidate ``new`` against a pool member ``old`` is
  ``rouge_scorer._score_lcs(new_tokens, old_tokens).fmeasure`` (target = new,
  prediction = old), computed with the same float operations in the same order.
* A candidate is a duplicate when the maximum score over the pool is strictly
  greater than the threshold; greedy dedup keeps a text when it is not a duplicate
  of any already kept text (or pre-loaded pool item).

How it is fast, and why it stays exact:

* Each text is tokenized once; tokens become integer ids and a token sequence is
  encoded as a ``str`` with one code point per token (surrogates skipped; tuples of
  ints beyond 1.1M distinct tokens), so LCS lengths are computed exactly by
  rapidfuzz in C.
* As a real number the score of a pair is ``2L/(m+n)``; ``L <= min(m, n)`` (length
  filter) and ``L`` is at most the multiset overlap of the token sequences.
  Multisets become sets of elements ``(token, k-th occurrence)``.  Under a fixed
  global element order (rare first; in an incrementally grown index, elements get
  their place when first seen, as the rarest so far, and keep it), two texts whose
  overlap reaches the minimum LCS needed share an element within the first
  ``s - alpha(s) + 1`` elements of each (prefix filtering, AllPairs/PPJoin), and the
  first shared element sits early enough in both texts (positional filter).
* The index maps each element to the items having it in their prefix.  Long lists
  are split by item length and by prefix zone, so a query only reads the items
  whose length passes the length filter and the positional filter for where the
  element sits in the query, and that can have it early enough themselves.
* Candidates are verified in C: one ``rapidfuzz.process.cdist`` call (Indel distance
  with a cutoff) per posting list and group of queries; the exact LCS is recovered
  from the distance.  Small groups are pooled into one ``cpdist`` call.
* Every bound carries a slack (``_EPS``, and 1e-6 on the distance cutoff): the float
  score differs from ``2L/(m+n)`` by a few ulps, so a pair whose float score exceeds
  the threshold is never pruned.  Decisions always use the reference float formula.
* Batch :func:`dedup` works in blocks of texts: the block is searched against the
  index grouped by element, pairs inside the block come from a length-banded
  self-join per element, then the greedy keep/drop decisions are made in order.
  The incremental API is the same search for a block of one text (or, when the
  candidates would cover the pool, e.g. with ``floor=0``, one call over all items).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import repeat
from typing import Callable, Sequence

import numpy as np
from rapidfuzz import process as _rf_process
from rapidfuzz.distance import Indel, LCSseq

__all__ = ["tokenize", "rouge_l_f", "Match", "RougeIndex", "dedup"]

# ---------------------------------------------------------------------------
# tokenization and the reference-exact score
# ---------------------------------------------------------------------------

# rouge_score.tokenize.tokenize(text, None) does:
#   text.lower(); re.sub(r"[^a-z0-9]+", " "); re.split(r"\s+"); keep r"^[a-z0-9]+$".
# After the substitution the string only holds [a-z0-9] runs separated by single
# spaces, so the result is exactly the list of maximal [a-z0-9]+ runs of text.lower().
_TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Tokens exactly as ``rouge_score.tokenize.tokenize(text, None)`` returns them."""
    return _TOKEN_RE.findall(text.lower())


def _fmeasure(lcs: int, m: int, n: int) -> float:
    """``rouge_scorer._score_lcs`` F for LCS length ``lcs``; m = len(new), n = len(old)."""
    if m == 0 or n == 0:
        return 0.0
    precision = lcs / n
    recall = lcs / m
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _fmeasure_np(lcs: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Vectorised :func:`_fmeasure` (same IEEE-754 operations, same order); m, n > 0."""
    lcs = lcs.astype(np.float64)
    precision = lcs / n.astype(np.float64)
    recall = lcs / m.astype(np.float64)
    s = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        f = 2 * precision * recall / s
    f[~(s > 0)] = 0.0
    return f


# Token ids are encoded as code points; surrogates (0xD800-0xDFFF) are skipped.
_MAX_CHR_IDS = 0x110000 - 0x800


def _id_chr(i: int) -> str:
    return chr(i if i < 0xD800 else i + 0x800)


def _chr_id(c: str) -> int:
    o = ord(c)
    return o if o < 0xD800 else o - 0x800


def rouge_l_f(new_tokens: Sequence[str], old_tokens: Sequence[str]) -> float:
    """Reference-exact ROUGE-L F of one pair (new = target, old = prediction).

    Equal to ``rouge_scorer._score_lcs(new_tokens, old_tokens).fmeasure``.
    """
    m, n = len(new_tokens), len(old_tokens)
    if m == 0 or n == 0:
        return 0.0
    ids: dict = {}
    a = [ids.setdefault(t, len(ids)) for t in new_tokens]
    b = [ids.setdefault(t, len(ids)) for t in old_tokens]
    if len(ids) <= _MAX_CHR_IDS:
        lcs = LCSseq.similarity("".join(map(_id_chr, a)), "".join(map(_id_chr, b)))
    else:  # lists of small ints: rapidfuzz hashes an int to itself, still exact
        lcs = LCSseq.similarity(a, b)
    return _fmeasure(lcs, m, n)


# ---------------------------------------------------------------------------
# pruning bounds
# ---------------------------------------------------------------------------

# Slack for every bound.  The float score differs from the exact rational 2L/(m+n)
# by a relative error of a few ulps (< 1e-15), far below _EPS, so a pair with
# float score > g always has L > (g - _EPS) * (m + n) / 2, even after rounding.
_EPS = 1e-9


def _lmin(g: float, m: int, n: int) -> int:
    """Smallest LCS length for which the score of an (m, n) pair can exceed g."""
    v = math.floor((g - _EPS) * (m + n) / 2) + 1
    return v if v > 1 else 1


def _lmin_np(g: float, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    v = np.floor((g - _EPS) * (m + n) / 2).astype(np.int64) + 1
    return np.maximum(v, 1)


def _prefix_len(g: float, s: int) -> int:
    """Prefix length for a text of ``s`` tokens (the same for probing and indexing).

    alpha(s) = min over partner lengths n passing the length filter
    (_lmin(g, s, n) <= min(s, n)) of _lmin(g, s, n); two texts whose overlap reaches
    _lmin share an element within their first ``s - alpha(s) + 1`` elements.
    """
    if s <= 0 or _lmin(g, s, s) > s:
        return 0
    # feasibility of a partner length n <= s (_lmin(g, s, n) <= n) is monotone in n
    # because _lmin grows by at most 1 per unit of n: binary-search the smallest.
    lo, hi = 1, s
    while lo < hi:
        mid = (lo + hi) // 2
        if _lmin(g, s, mid) <= mid:
            hi = mid
        else:
            lo = mid + 1
    alpha = _lmin(g, s, lo)  # _lmin is nondecreasing in n: the smallest n is the min
    return min(s, s - alpha + 1)


# ---------------------------------------------------------------------------
# index
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    duplicate: bool  # max score > threshold
    nearest: str | None  # key of the best-scoring pool item found (None if none scored)
    score: float  # its score (0.0 if none)


# a (posting list, queries) group with at least this many pairs gets its own cdist
# call; smaller groups are pooled into one cpdist call
_BIG = 32
# a posting list is split by item length and zone once it holds more than this
_SPLIT = 256
_INF = 1 << 62
# at most this many cells per cdist matrix, and pending candidate pairs
_CELLS = 1 << 22
_PENDING = 1 << 21


class _Posting:
    """Items having one element in their prefix (of one length and zone once split)."""

    __slots__ = ("enc", "docs", "zones")

    def __init__(self) -> None:
        self.enc: list = []  # encodings
        self.docs: list[int] = []  # item ids
        self.zones: list[int] = []  # prefix zone per item (unsplit lists only)


class _Prepared:
    __slots__ = ("enc", "m", "prefix", "new_tokens", "new_elems")

    def __init__(self, enc, m, prefix, new_tokens, new_elems):
        self.enc = enc  # encoded token sequence (str, or tuple of ints)
        self.m = m  # number of tokens
        self.prefix = prefix  # ranks of the prefix elements, ascending
        self.new_tokens = new_tokens  # tokens unseen by the index, in order of first use
        self.new_elems = new_elems  # tokens of elements unseen by the index, in order


class RougeIndex:
    """A pool of texts answering "is this a ROUGE-L near-duplicate?" exactly.

    ``threshold``: duplicate when the max score > threshold.  ``floor`` (default
    ``threshold``): ``nearest``/``score`` are exact whenever the true best score is
    > floor; ``floor=0.0`` always gives the exact nearest.  ``nearest`` is reported
    only for scores above ``min(floor, threshold)`` (negative floors act as 0.0), so
    with the default floor a non-duplicate usually has ``nearest=None``.  Ties go to
    the earliest-added item.
    """

    def __init__(self, threshold: float = 0.7, floor: float | None = None):
        threshold = float(threshold)
        if not threshold >= 0.0:
            raise ValueError("threshold must be >= 0")
        self.threshold = threshold
        self.floor = threshold if floor is None else float(floor)
        # every pair that could score above g is verified
        self._g = min(max(self.floor, 0.0), threshold)
        # Indel distance = m + n - 2 LCS; a pair can score above g only if
        # dist / (m + n) < 1 - g (up to float rounding): cut at 1 - g + 1e-6
        self._ncut = min(1.0, 1.0 - self._g + 1e-6)
        self._plen_cache: list[int] = []
        # vocabulary: token -> id (code point for the LCS strings)
        self._tid: dict[str, int] = {}
        self._str_mode = True
        # element order: token -> ranks of its 1st, 2nd, ... occurrence.  Ranks never
        # change; unseen elements get ranks below all existing ones (treated as rare).
        self._order: dict[str, list[int]] | None = {}
        self._next_rank = -1
        # items
        self._keys: list[str] = []
        self._texts: list[str] = []
        self._enc: list = []
        self._lens: list[int] = []
        self._lens_np = np.zeros(256, dtype=np.int64)
        # postings: element rank -> _Posting while short, then (split) item length
        # n -> [core, extra] (_Posting or None).  "core" holds prefix positions
        # j <= n - _lmin(g, n, n) (all a partner of length >= n can need), "extra"
        # the rest of the prefix (only partners shorter than n can need those).
        self._post: dict[int, _Posting | dict[int, list]] = {}
        self._psize: dict[int, int] = {}  # element rank -> number of items posted
        self._geom_cache: dict[int, tuple] = {}

    # -- basics ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    def _plen(self, s: int) -> int:
        cache = self._plen_cache
        if s >= len(cache):
            g = self._g
            cache.extend(_prefix_len(g, x) for x in range(len(cache), max(s + 1, 2 * len(cache))))
        return cache[s]

    def _plen_np(self, sizes: np.ndarray) -> np.ndarray:
        if len(sizes):
            self._plen(int(sizes.max()))
        return np.asarray(self._plen_cache, dtype=np.int64)[sizes]

    def _geom(self, m: int) -> tuple:
        """(core_len, nlo, nhi_by_position) for texts of length m.

        core_len: prefix positions j < core_len go to the "core" postings.
        A partner of length n can reach the threshold via a first shared element at
        prefix position i of this text only if nlo <= n <= nhi_by_position[i]
        (length filter and positional filter: _lmin(g, m, n) <= min(n, m - i)).
        """
        geo = self._geom_cache.get(m)
        if geo is None:
            g = self._g
            core = m - _lmin(g, m, m) + 1 if _lmin(g, m, m) <= m else 0
            # smallest n with _lmin(g, m, n) <= n (monotone, see _prefix_len)
            lo, hi = 1, max(m, 1)
            while lo < hi:
                mid = (lo + hi) // 2
                if _lmin(g, m, mid) <= mid:
                    hi = mid
                else:
                    lo = mid + 1
            nlo = lo
            nhi = []
            for i in range(self._plen(m)):
                room = m - i  # largest n with _lmin(g, m, n) <= room (nondecreasing in n)
                if _lmin(g, m, _INF) <= room:
                    nhi.append(_INF)
                    continue
                lo, hi = 0, 1
                while _lmin(g, m, hi) <= room:
                    hi *= 2
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if _lmin(g, m, mid) <= room:
                        lo = mid
                    else:
                        hi = mid
                nhi.append(lo)
            geo = self._geom_cache[m] = (core, nlo, nhi)
        return geo

    def _to_tuple_mode(self) -> None:
        if self._str_mode:
            self._str_mode = False
            self._enc = [tuple(map(_chr_id, e)) for e in self._enc]
            for byn in self._post.values():
                if type(byn) is _Posting:
                    byn.enc = [self._enc[d] for d in byn.docs]
                    continue
                for parts in byn.values():
                    for p in parts:
                        if p is not None:
                            p.enc = [self._enc[d] for d in p.docs]

    def _append_item(self, key: str, text: str, enc, m: int, prefix) -> int:
        """Add an item (and its postings, unless ``prefix`` is None: see _post_item)."""
        d = len(self._keys)
        self._keys.append(key)
        self._texts.append(text)
        self._enc.append(enc)
        self._lens.append(m)
        if d >= len(self._lens_np):
            self._lens_np = np.concatenate((self._lens_np, np.zeros(len(self._lens_np), dtype=np.int64)))
        self._lens_np[d] = m
        if prefix:
            self._post_item(d, enc, m, prefix)
        return d

    def _post_item(self, d: int, enc, m: int, prefix) -> None:
        if prefix:
            post = self._post
            psize = self._psize
            core = self._geom(m)[0]
            for j, r in enumerate(prefix):
                psize[r] = psize.get(r, 0) + 1
                z = 0 if j < core else 1
                byn = post.get(r)
                if byn is None:
                    byn = post[r] = _Posting()
                if type(byn) is _Posting:
                    byn.enc.append(enc)
                    byn.docs.append(d)
                    byn.zones.append(z)
                    if len(byn.docs) > _SPLIT:
                        post[r] = self._split(byn)
                    continue
                parts = byn.get(m)
                if parts is None:
                    parts = byn[m] = [None, None]
                p = parts[z]
                if p is None:
                    p = parts[z] = _Posting()
                p.enc.append(enc)
                p.docs.append(d)

    def _split(self, flat: _Posting) -> dict[int, list]:
        byn: dict[int, list] = {}
        lens = self._lens
        for e, d, z in zip(flat.enc, flat.docs, flat.zones):
            n = lens[d]
            parts = byn.get(n)
            if parts is None:
                parts = byn[n] = [None, None]
            p = parts[z]
            if p is None:
                p = parts[z] = _Posting()
            p.enc.append(e)
            p.docs.append(d)
        return byn

    # -- incremental preparation -------------------------------------------

    def _prep(self, text: str) -> _Prepared:
        if self._order is None:
            raise RuntimeError("this index was built by dedup() and takes no incremental queries")
        tokens = tokenize(text)
        tid = self._tid
        base = len(tid)
        new_tokens: dict[str, int] = {}
        ids = []
        for t in tokens:
            x = tid.get(t)
            if x is None:
                x = new_tokens.get(t)
                if x is None:
                    x = new_tokens[t] = base + len(new_tokens)
            ids.append(x)
        if self._str_mode and base + len(new_tokens) > _MAX_CHR_IDS:
            self._to_tuple_mode()  # representation change only
        order = self._order
        occ: dict[str, int] = {}
        ranks = []
        new_elems = []
        nr = self._next_rank
        for t in tokens:
            k = occ.get(t, 0)
            occ[t] = k + 1
            rl = order.get(t)
            if rl is not None and k < len(rl):
                ranks.append(rl[k])
            else:
                ranks.append(nr)
                new_elems.append(t)
                nr -= 1
        ranks.sort()
        m = len(tokens)
        enc = "".join(map(_id_chr, ids)) if self._str_mode else tuple(ids)
        return _Prepared(enc, m, ranks[: self._plen(m)], list(new_tokens), new_elems)

    def _commit(self, p: _Prepared, key: str, text: str) -> None:
        tid = self._tid
        for t in p.new_tokens:  # same ids as the temporary ones used by _prep
            tid[t] = len(tid)
        order = self._order
        for t in p.new_elems:  # same ranks as the temporary ones used by _prep
            order.setdefault(t, []).append(self._next_rank)
            self._next_rank -= 1
        self._append_item(key, text, p.enc, p.m, p.prefix)

    # -- search ------------------------------------------------------------

    def _search(self, qenc, qlen, granks, gq, gi, ga, gb, inblock: bool):
        """Verify every pair that could score above g, grouped by prefix element.

        Queries are ``qenc``/``qlen`` (block-local ids).  Group t has element rank
        ``granks[t]``; its entries x in ``ga[t]:gb[t]`` are query ``gq[x]``
        (ascending) having that element at prefix position ``gi[x]``.
        Returns (best_f, best_d) per query against the index (best_d = -1: nothing
        above g) and, if ``inblock``, a dict q2 -> [(q1, f), ...] of block pairs
        q1 < q2 with f > g.
        """
        nq = len(qlen)
        g = self._g
        ncut = self._ncut
        post = self._post
        geom = self._geom
        cdist = _rf_process.cdist
        best_f = np.zeros(nq, dtype=np.float64)
        best_d = np.full(nq, -1, dtype=np.int64)
        qlen_np = np.asarray(qlen, dtype=np.int64)
        lens_np = self._lens_np
        # pairs found by cdist: (queries, items, normalized indel distances)
        bq: list[np.ndarray] = []
        bd: list[np.ndarray] = []
        bdist: list[np.ndarray] = []
        nbig = [0]
        # pooled small groups (one cpdist call)
        sq: list[int] = []
        sd: list[int] = []
        sqs: list = []
        sds: list = []

        def merge(q, d, lcs):
            """Exact scores of (query, item, LCS) triples -> best per query so far."""
            m = qlen_np[q]
            n = lens_np[d]
            keep = lcs >= _lmin_np(g, m, n)
            q, d, m, n, lcs = q[keep], d[keep], m[keep], n[keep], lcs[keep]
            f = _fmeasure_np(lcs, m, n)
            keep = f > g
            q, d, f = q[keep], d[keep], f[keep]
            if not len(q):
                return
            old = np.flatnonzero(best_d >= 0)
            q = np.concatenate((q, old))
            d = np.concatenate((d, best_d[old]))
            f = np.concatenate((f, best_f[old]))
            # best per query: highest score, ties -> earliest item
            o = np.lexsort((d, -f, q))
            q, d, f = q[o], d[o], f[o]
            head = np.ones(len(q), dtype=bool)
            np.not_equal(q[1:], q[:-1], out=head[1:])
            best_f[q[head]] = f[head]
            best_d[q[head]] = d[head]

        def flush_big():
            if bq:
                q = np.concatenate(bq)
                d = np.concatenate(bd)
                mn = qlen_np[q] + lens_np[d]
                # exact integer distance back from dist / (m + n) (error << 0.5)
                dist = np.rint(np.concatenate(bdist) * mn).astype(np.int64)
                del bq[:], bd[:], bdist[:]
                nbig[0] = 0
                merge(q, d, (mn - dist) // 2)

        def flush_small():
            if sq:
                lcs = _rf_process.cpdist(sqs, sds, scorer=LCSseq.similarity, dtype=np.int64)
                q = np.asarray(sq, dtype=np.int64)
                d = np.asarray(sd, dtype=np.int64)
                del sq[:], sd[:], sqs[:], sds[:]
                merge(q, d, lcs)

        def verify(qids, encs, docs):
            """Queue every pair of queries ``qids`` x items (``encs``, ``docs``)."""
            nd = len(docs)
            if len(qids) * nd >= _BIG:
                step = max(1, _CELLS // nd)  # bound the matrix size
                for s0 in range(0, len(qids), step):
                    part = qids[s0 : s0 + step]
                    mat = cdist(
                        [qenc[q] for q in part],
                        encs,
                        scorer=Indel.normalized_distance,
                        score_cutoff=ncut,
                        dtype=np.float64,
                    )
                    rows, cols = np.nonzero(mat < 1.0)
                    if len(rows):
                        bq.append(np.asarray(part, dtype=np.int64)[rows])
                        bd.append(np.fromiter(map(docs.__getitem__, cols.tolist()), np.int64, len(cols)))
                        bdist.append(mat[rows, cols])
                        nbig[0] += len(rows)
                if nbig[0] > _PENDING:
                    flush_big()
            else:
                for q in qids:
                    sq.extend(repeat(q, nd))
                    sd.extend(docs)
                    sqs.extend(repeat(qenc[q], nd))
                    sds.extend(encs)
                if len(sq) > _PENDING:
                    flush_small()

        # block-internal pairs
        iq1: list = []
        iq2: list = []
        idist: list = []
        siq1: list[int] = []
        siq2: list[int] = []
        for t in range(len(granks)):
            a, b = ga[t], gb[t]
            byn = post.get(granks[t])
            if byn is not None:
                # (query, m, admissible partner lengths) of each entry of the group
                ents = []
                lo_n, hi_n = _INF, -1
                for x in range(a, b):
                    q = gq[x]
                    m = qlen[q]
                    _, nlo, nhi = geom(m)
                    nh = nhi[gi[x]]
                    if nh >= nlo:
                        ents.append((q, m, nlo, nh))
                        if nlo < lo_n:
                            lo_n = nlo
                        if nh > hi_n:
                            hi_n = nh
                if ents and type(byn) is _Posting:
                    # short list: verify it whole
                    verify([e[0] for e in ents], byn.enc, byn.docs)
                elif ents:
                    if hi_n - lo_n + 1 < len(byn):
                        items = [(n, byn[n]) for n in range(lo_n, hi_n + 1) if n in byn]
                    else:
                        items = [(n, v) for n, v in byn.items() if lo_n <= n <= hi_n]
                    single = len(ents) == 1
                    for n, parts in items:
                        sel = ents if single else [e for e in ents if e[2] <= n <= e[3]]
                        for z in (0, 1):
                            p = parts[z]
                            if p is None:
                                continue
                            if z == 1:  # extra zone: only partners shorter than n
                                sel = [e for e in sel if e[1] < n]
                            if not sel:
                                break
                            verify([e[0] for e in sel], p.enc, p.docs)
            if inblock and b - a >= 2:
                qs = gq[a:b]
                k = b - a
                if k * k >= 2 * _BIG:
                    # sort by length; each row is compared with the later (not
                    # shorter) members its length filter admits, in bands of rows
                    srt = sorted(qs, key=qlen.__getitem__)
                    sm = [qlen[q] for q in srt]
                    se = [qenc[q] for q in srt]
                    sa = np.asarray(srt, dtype=np.int64)
                    s0 = 0
                    while s0 < k:
                        s1 = min(k, s0 + 16)
                        while s1 < k and sm[s1] == sm[s1 - 1]:
                            s1 += 1
                        c1 = bisect_right(sm, geom(sm[s1 - 1])[2][0], s0)
                        mat = cdist(
                            se[s0:s1], se[s0:c1], scorer=Indel.normalized_distance, score_cutoff=ncut, dtype=np.float64
                        )
                        rows, cols = np.nonzero(mat < 1.0)
                        up = cols > rows
                        rows, cols = rows[up], cols[up]
                        if len(rows):
                            qa = sa[s0 + rows]
                            qb = sa[s0 + cols]
                            iq1.append(np.minimum(qa, qb))
                            iq2.append(np.maximum(qa, qb))
                            idist.append(mat[rows, cols])
                        s0 = s1
                else:
                    for x in range(k - 1):
                        siq1.extend(repeat(qs[x], k - 1 - x))
                        siq2.extend(qs[x + 1 :])

        flush_big()
        flush_small()
        # ---- inside the block
        pairs: dict[int, list] = {}
        if inblock:
            q1s, q2s, ls = [], [], []
            if iq1:
                q1 = np.concatenate(iq1)
                q2 = np.concatenate(iq2)
                q1s.append(q1)
                q2s.append(q2)
                mn = qlen_np[q1] + qlen_np[q2]
                ls.append((mn - np.rint(np.concatenate(idist) * mn).astype(np.int64)) // 2)
            if siq1:
                q1 = np.asarray(siq1, dtype=np.int64)
                q2 = np.asarray(siq2, dtype=np.int64)
                q1s.append(q1)
                q2s.append(q2)
                ls.append(
                    _rf_process.cpdist(
                        [qenc[x] for x in siq1], [qenc[x] for x in siq2], scorer=LCSseq.similarity, dtype=np.int64
                    )
                )
            if q1s:
                q1 = np.concatenate(q1s)
                q2 = np.concatenate(q2s)
                lcs = np.concatenate(ls)
                m = qlen_np[q2]  # q2 is the new text (target), q1 the earlier one
                n = qlen_np[q1]
                keep = lcs >= _lmin_np(g, m, n)
                q1, q2, m, n, lcs = q1[keep], q2[keep], m[keep], n[keep], lcs[keep]
                f = _fmeasure_np(lcs, m, n)
                keep = f > g
                for a, b, c in zip(q1[keep].tolist(), q2[keep].tolist(), f[keep].tolist()):
                    lst = pairs.get(b)
                    if lst is None:
                        pairs[b] = [(a, c)]
                    else:
                        lst.append((a, c))
        return best_f, best_d, pairs

    def _best(self, enc, m: int, prefix) -> tuple[float, int]:
        """Best item scoring above g for one text: (score, item id), or (0.0, -1)."""
        if not prefix or not self._post:
            return 0.0, -1
        psize = self._psize
        if sum([psize.get(r, 0) for r in prefix]) >= len(self._keys):
            # the candidates would cover the pool (e.g. floor=0): compare with all items once
            return self._brute_one(enc, m)
        k = len(prefix)
        best_f, best_d, _ = self._search([enc], [m], prefix, [0] * k, range(k), range(k), range(1, k + 1), False)
        return float(best_f[0]), int(best_d[0])

    def _match_one(self, p: _Prepared) -> Match:
        bf, bd = self._best(p.enc, p.m, p.prefix)
        if bd < 0:
            return Match(False, None, 0.0)
        return Match(bf > self.threshold, self._keys[bd], bf)

    def _brute_one(self, enc, m: int) -> tuple[float, int]:
        """Best item scoring above g for one text, scoring every item (in C)."""
        row = _rf_process.cdist(
            [enc], self._enc, scorer=Indel.normalized_distance, score_cutoff=self._ncut, dtype=np.float64
        )[0]
        d = np.flatnonzero(row < 1.0)
        if not len(d):
            return 0.0, -1
        g = self._g
        n = self._lens_np[d]
        keep = n > 0
        d, n = d[keep], n[keep]
        mn = m + n
        lcs = (mn - np.rint(row[d] * mn).astype(np.int64)) // 2  # exact LCS back from dist / (m + n)
        keep = lcs >= _lmin_np(g, m, n)
        d, n, lcs = d[keep], n[keep], lcs[keep]
        if not len(d):
            return 0.0, -1
        f = _fmeasure_np(lcs, np.full(len(d), m, dtype=np.int64), n)
        keep = f > g
        if not keep.any():
            return 0.0, -1
        d, f = d[keep], f[keep]
        best = f.max()
        return float(best), int(d[f == best].min())

    # -- public API --------------------------------------------------------

    def add(self, text: str, key: str) -> None:
        """Add ``text`` unconditionally (seed tasks, resume replay)."""
        self._commit(self._prep(text), key, text)

    def query(self, text: str) -> Match:
        """Best match of ``text`` in the pool; does not modify the index."""
        return self._match_one(self._prep(text))

    def check_add(self, text: str, key: str) -> Match:
        """Query; add ``text`` under ``key`` when it is not a duplicate."""
        p = self._prep(text)
        match = self._match_one(p)
        if not match.duplicate:
            self._commit(p, key, text)
        return match

    def state(self) -> dict:
        """JSON-serialisable state; :meth:`from_state` rebuilds an identical index."""
        if self._order is None:
            raise RuntimeError("this index was built by dedup() and has no incremental state")
        return {
            "format": "selfinstruct.rouge/1",
            "threshold": self.threshold,
            "floor": self.floor,
            "order": {t: list(r) for t, r in self._order.items()},
            "next_rank": self._next_rank,
            "items": [[k, t] for k, t in zip(self._keys, self._texts)],
        }

    @classmethod
    def from_state(cls, d: dict) -> "RougeIndex":
        if d.get("format") != "selfinstruct.rouge/1":
            raise ValueError("unknown RougeIndex state format")
        idx = cls(d["threshold"], d["floor"])
        idx._order = {t: list(r) for t, r in d["order"].items()}
        idx._next_rank = int(d["next_rank"])
        for key, text in d["items"]:
            p = idx._prep(text)
            if p.new_elems:  # cannot happen for a state written by state()
                raise ValueError("inconsistent RougeIndex state: element missing from the order table")
            idx._commit(p, key, text)
        return idx


# ---------------------------------------------------------------------------
# batch dedup
# ---------------------------------------------------------------------------


def _batch_prepare(texts: Sequence[str], plen_np: Callable[[np.ndarray], np.ndarray]):
    """Tokenize all texts once; global rare-first element order; prefixes.

    Returns (enc, str_mode, lens, pref_off, pref_rank): the prefix of text x is
    pref_rank[pref_off[x]:pref_off[x + 1]] (ranks ascending).
    """
    nt = len(texts)
    vocab: dict[str, int] = {}
    flat: list[int] = []
    lens = np.empty(nt, dtype=np.int64)
    findall = _TOKEN_RE.findall
    setdef = vocab.setdefault
    for x, text in enumerate(texts):
        toks = findall(text.lower())
        lens[x] = len(toks)
        flat.extend([setdef(t, len(vocab)) for t in toks])
    nv = max(len(vocab), 1)
    ids = np.array(flat, dtype=np.int64)
    del flat
    # frequent tokens get small ids (code points < 256 take rapidfuzz's fast path)
    remap = np.empty(nv, dtype=np.int64)
    remap[np.argsort(-np.bincount(ids, minlength=nv), kind="stable")] = np.arange(nv, dtype=np.int64)
    ids = remap[ids]
    del remap
    offs = np.zeros(nt + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    ol = offs.tolist()
    # encodings: one code point per token (surrogates skipped), sliced from one string
    if nv <= _MAX_CHR_IDS:
        big = np.where(ids < 0xD800, ids, ids + 0x800).astype("<u4").tobytes().decode("utf-32-le")
        enc = [big[ol[x] : ol[x + 1]] for x in range(nt)]
        del big
        str_mode = True
    else:
        il = ids.tolist()
        enc = [tuple(il[ol[x] : ol[x + 1]]) for x in range(nt)]
        str_mode = False
    if not len(ids):
        return enc, str_mode, lens, np.zeros(nt + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    doc = np.repeat(np.arange(nt, dtype=np.int64), lens)
    # k = occurrence number of the token within its text -> element (token, k)
    dk = doc * nv + ids
    o = np.argsort(dk, kind="stable")
    sk = dk[o]
    del dk
    newg = np.empty(len(sk), dtype=bool)
    newg[0] = True
    np.not_equal(sk[1:], sk[:-1], out=newg[1:])
    gstart = np.flatnonzero(newg)
    k = np.arange(len(sk)) - np.repeat(gstart, np.diff(np.append(gstart, len(sk))))
    del sk, newg, gstart
    uniq, inv, counts = np.unique(k * nv + ids[o], return_inverse=True, return_counts=True)
    del k
    # global order: rare first (number of texts having the element), ties by key
    rank_of = np.empty(len(uniq), dtype=np.int64)
    rank_of[np.lexsort((uniq, counts))] = np.arange(len(uniq), dtype=np.int64)
    ne = len(uniq)
    del uniq, counts
    r = rank_of[inv.reshape(-1)]
    dsorted = doc[o]
    del rank_of, inv, o, doc
    # each text's elements sorted by rank
    sk = np.sort(dsorted * ne + r)
    del dsorted, r
    pdoc = sk // ne
    prank = sk - pdoc * ne
    del sk
    pos = np.arange(len(pdoc), dtype=np.int64) - offs[pdoc]
    keep = pos < plen_np(lens)[pdoc]
    pref_off = np.zeros(nt + 1, dtype=np.int64)
    np.cumsum(np.bincount(pdoc[keep], minlength=nt), out=pref_off[1:])
    return enc, str_mode, lens, pref_off, prank[keep]


_BLOCK = 65536
# dedup() decides text by text when min(floor, threshold) is below this
_SEQUENTIAL_BELOW = 0.3


def dedup(
    texts: Sequence[str],
    threshold: float = 0.7,
    pool: Sequence[str] = (),
    floor: float | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[Match]:
    """Greedy ROUGE-L dedup of ``texts`` in order (Alpaca semantics, exact).

    ``pool`` items are pre-loaded (keys ``"pool:<i>"``); kept texts get key ``"<i>"``
    (their index in ``texts``).  Returns one :class:`Match` per text;
    ``duplicate=True`` means the text was dropped.  ``progress(n_done)`` is called
    after each block of texts.
    """
    texts = list(texts)
    pool = list(pool)
    idx = RougeIndex(threshold, floor)
    idx._order = None  # global element order computed here; no incremental use
    npool = len(pool)
    enc, str_mode, lens, pref_off, pref_rank = _batch_prepare(pool + texts, idx._plen_np)
    idx._str_mode = str_mode
    lens_l = lens.tolist()
    po = pref_off.tolist()
    for x in range(npool):
        idx._append_item(f"pool:{x}", pool[x], enc[x], lens_l[x], pref_rank[po[x] : po[x + 1]].tolist())

    out: list[Match] = []
    thr = idx.threshold
    keys = idx._keys
    n = len(texts)
    done = 0
    pending: list = []
    has_post = np.zeros(int(pref_rank.max()) + 1 if len(pref_rank) else 1, dtype=bool)
    for r in idx._post:
        has_post[r] = True
    g = idx._g
    if g < _SEQUENTIAL_BELOW:
        # low floor: prefixes are (nearly) whole texts and blocks would hold too
        # many pairs; decide text by text like the incremental API
        for t in range(n):
            x = npool + t
            prefix = pref_rank[po[x] : po[x + 1]].tolist()
            bf, bd = idx._best(enc[x], lens_l[x], prefix)
            match = Match(False, None, 0.0) if bd < 0 else Match(bf > thr, keys[bd], bf)
            out.append(match)
            if not match.duplicate:
                idx._append_item(str(t), texts[t], enc[x], lens_l[x], prefix)
            if progress is not None and ((t + 1) % 4096 == 0 or t + 1 == n):
                progress(t + 1)
        return out
    # pairs inside a block are all kept while the block is decided; with a lower
    # floor there are more of them, so blocks get smaller
    block = min(_BLOCK, 1 << 16 if g >= 0.6 else 1 << 14 if g >= 0.45 else 1 << 12)
    for b0 in range(npool, npool + n, block):
        b1 = min(b0 + block, npool + n)
        # postings of the previous block's kept texts (deferred: the last block
        # needs none, its texts are compared in-block)
        for args in pending:
            idx._post_item(*args)
            has_post[args[3]] = True
        pending = []
        nb = b1 - b0
        lo, hi = po[b0], po[b1]
        pr = pref_rank[lo:hi]
        pq = np.repeat(np.arange(nb, dtype=np.int64), np.diff(pref_off[b0 : b1 + 1]))
        # group the block's prefix entries by element
        o = np.lexsort((pq, pr))
        sr = pr[o]
        if len(sr):
            cut = np.flatnonzero(sr[1:] != sr[:-1]) + 1
            ga = np.concatenate(([0], cut))
            gb = np.concatenate((cut, [len(sr)]))
            granks = sr[ga]
            # only groups with postings or with several block texts can yield pairs
            use = np.flatnonzero(((gb - ga) >= 2) | has_post[granks])
            ga, gb, granks = ga[use].tolist(), gb[use].tolist(), granks[use].tolist()
        else:
            ga, gb, granks = [], [], []
        qenc = enc[b0:b1]
        qlen = lens_l[b0:b1]
        gi = (np.arange(hi - lo, dtype=np.int64) - (pref_off[b0:b1] - lo)[pq])[o].tolist()
        best_f, best_d, pairs = idx._search(qenc, qlen, granks, pq[o].tolist(), gi, ga, gb, True)
        best_f = best_f.tolist()
        best_d = best_d.tolist()
        pr_l = pr.tolist()
        bpo = [p - lo for p in po[b0 : b1 + 1]]
        kept_id = [-1] * nb  # index id of kept block texts
        for x in range(nb):
            bf, bd = best_f[x], best_d[x]
            for q1, f in pairs.get(x, ()):
                d1 = kept_id[q1]
                if d1 >= 0 and (f > bf or (f == bf and d1 < bd)):
                    bf, bd = f, d1
            if bd < 0:
                match = Match(False, None, 0.0)
            else:
                match = Match(bf > thr, keys[bd], bf)
            out.append(match)
            if not match.duplicate:
                t = b0 + x - npool
                d = kept_id[x] = idx._append_item(str(t), texts[t], qenc[x], qlen[x], None)
                pending.append((d, qenc[x], qlen[x], pr_l[bpo[x] : bpo[x + 1]]))
        done += nb
        if progress is not None:
            progress(done)
    return out
