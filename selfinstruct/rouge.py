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

Speed comes from never scoring pairs that provably cannot reach the threshold:

* each text is tokenized once; tokens become integer ids, and a token sequence is
  encoded as a ``str`` with one code point per token so that the exact LCS length is
  computed by ``rapidfuzz.distance.LCSseq`` (bit-parallel, in C);
* the ROUGE-L F of a pair is (mathematically) ``2L/(m+n)`` and ``L`` is bounded by
  ``min(m, n)`` (length filter) and by the multiset overlap of the two token
  sequences.  Multisets become sets of elements ``(token, k-th occurrence)``, and an
  inverted index with prefix filtering (AllPairs / PPJoin, including the positional
  filter) over a fixed global element order finds every pair whose overlap can reach
  the minimum LCS needed.  All bounds carry a slack of ``_EPS`` so float rounding can
  never prune a pair whose exact (float) score exceeds the threshold; the decision is
  always made with the exact float formula.

The index holds postings in immutable sorted numpy segments (merged LSM-style) that
are searched for a whole block of queries at once, plus a small Python "tail" for
items added since the last flush.  Candidate pairs found in the segments are verified
in bulk with ``rapidfuzz.process.cpdist`` (multi-threaded).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from rapidfuzz import process as _rf_process
from rapidfuzz.distance import LCSseq

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
    """Vectorised :func:`_fmeasure` with identical IEEE-754 operations (m, n > 0)."""
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
# by a relative error of at most a few ulps (~1e-15), far below _EPS, so a pair
# with float score > g always satisfies L > (g - _EPS) * (m + n) / 2 even after
# the rounding of that product.
_EPS = 1e-9


def _lmin(g: float, m: int, n: int) -> int:
    """Smallest LCS length for which the score of an (m, n) pair can exceed g."""
    v = math.floor((g - _EPS) * (m + n) / 2) + 1
    return v if v > 1 else 1


def _lmin_np(g: float, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    v = np.floor((g - _EPS) * (m + n) / 2).astype(np.int64) + 1
    return np.maximum(v, 1)


_ELL = 1


def _prefix_len(g: float, s: int) -> int:
    """Prefix length for a text of ``s`` tokens (same for probing and indexing).

    alpha(s) = min over partner lengths n that pass the length filter of
    _lmin(g, s, n); two texts whose overlap reaches alpha share an element within
    their first ``s - alpha + 1`` elements (prefix-filtering lemma).
    """
    if s <= 0:
        return 0
    # feasibility of partner length n <= s (i.e. _lmin(g, s, n) <= n) is monotone in
    # n because _lmin grows by at most 1 per unit of n; binary-search the smallest.
    if _lmin(g, s, s) > s:
        return 0
    lo, hi = 1, s
    while lo < hi:
        mid = (lo + hi) // 2
        if _lmin(g, s, mid) <= mid:
            hi = mid
        else:
            lo = mid + 1
    alpha = _lmin(g, s, lo)  # nondecreasing in n, so the smallest feasible n is best
    return min(s, s - alpha + _ELL)


# ---------------------------------------------------------------------------
# public result type
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    duplicate: bool  # max score > threshold
    nearest: str | None  # key of the best-scoring pool item found (None if none scored)
    score: float  # its score (0.0 if none)


# rapidfuzz worker threads for bulk verification (-1 = all cores)
_WORKERS = -1
# below this many pairs a plain map() beats cpdist's thread start-up
_CPDIST_MIN = 2048
# incremental mode: tail size (items) at which postings move into a numpy segment
_TAIL_FLUSH = 1024


def _lcs_many(qs: list, ds: list) -> np.ndarray:
    if len(qs) >= _CPDIST_MIN:
        return _rf_process.cpdist(qs, ds, scorer=LCSseq.similarity, dtype=np.int64, workers=_WORKERS)
    return np.fromiter(map(LCSseq.similarity, qs, ds), dtype=np.int64, count=len(qs))


class _Prepared:
    __slots__ = ("enc", "m", "prefix", "new_tokens", "new_elems")

    def __init__(self, enc, m, prefix, new_tokens, new_elems):
        self.enc = enc  # encoded token sequence (str, or tuple of ints)
        self.m = m  # number of tokens
        self.prefix = prefix  # ranks of the prefix elements, ascending
        self.new_tokens = new_tokens  # tokens unseen by the index, in order of first use
        self.new_elems = new_elems  # tokens of elements unseen by the index, in order


class RougeIndex:
    """Pool of texts answering "is this a ROUGE-L near-duplicate?" exactly.

    ``threshold``: duplicate when max score > threshold.  ``floor`` (default
    ``threshold``): ``nearest``/``score`` are exact whenever the true best score is
    > floor (floor=0.0: always exact).  Negative floors are treated as 0.0.
    """

    def __init__(self, threshold: float = 0.7, floor: float | None = None):
        threshold = float(threshold)
        if not threshold >= 0.0:
            raise ValueError("threshold must be >= 0")
        self.threshold = threshold
        self.floor = threshold if floor is None else float(floor)
        # candidates that could score above g are verified
        self._g = min(max(self.floor, 0.0), threshold)
        self._plen_cache: list[int] = []
        # vocabulary: token -> id (code point for LCS strings)
        self._tid: dict[str, int] = {}
        self._str_mode = True
        # element order: token -> ranks of its 1st, 2nd, ... occurrence. Ranks never
        # change; unseen elements get ranks below all existing ones ("rare").
        self._order: dict[str, list[int]] | None = {}
        self._next_rank = -1
        # items
        self._keys: list[str] = []
        self._texts: list[str] = []
        self._enc: list = []
        self._lens: list[int] = []
        self._lens_np = np.zeros(1024, dtype=np.int64)
        # postings: sorted numpy segments (ranks, docs, positions) + python tail
        self._segments: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._tail: dict[int, list[tuple[int, int]]] = {}
        self._tail_items = 0

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

    def _to_tuple_mode(self) -> None:
        if self._str_mode:
            self._str_mode = False
            self._enc = [tuple(map(_chr_id, e)) for e in self._enc]

    def _encode(self, ids: list[int]):
        if self._str_mode:
            return "".join(map(_id_chr, ids))
        return tuple(ids)

    def _append_item(self, key: str, text: str, enc, m: int) -> int:
        d = len(self._keys)
        self._keys.append(key)
        self._texts.append(text)
        self._enc.append(enc)
        self._lens.append(m)
        if d >= len(self._lens_np):
            grown = np.zeros(2 * len(self._lens_np), dtype=np.int64)
            grown[: len(self._lens_np)] = self._lens_np
            self._lens_np = grown
        self._lens_np[d] = m
        return d

    # -- incremental preparation -------------------------------------------

    def _prep(self, text: str) -> _Prepared:
        if self._order is None:
            raise RuntimeError("this index was built by dedup() and cannot take incremental queries")
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
        return _Prepared(self._encode(ids), m, ranks[: self._plen(m)], list(new_tokens), new_elems)

    def _commit(self, p: _Prepared, key: str, text: str) -> None:
        tid = self._tid
        for t in p.new_tokens:  # same ids as the temporary ones used in _prep
            tid[t] = len(tid)
        order = self._order
        for t in p.new_elems:  # same ranks as the temporary ones used in _prep
            order.setdefault(t, []).append(self._next_rank)
            self._next_rank -= 1
        d = self._append_item(key, text, p.enc, p.m)
        self._tail_add(d, p.prefix)
        if self._tail_items >= _TAIL_FLUSH:
            self._flush_tail()

    # -- postings ----------------------------------------------------------

    def _tail_add(self, d: int, prefix) -> None:
        tail = self._tail
        for j, r in enumerate(prefix):
            lst = tail.get(r)
            if lst is None:
                tail[r] = [(d, j)]
            else:
                lst.append((d, j))
        self._tail_items += 1

    def _flush_tail(self) -> None:
        if self._tail:
            rs, ds, js = [], [], []
            for r, lst in self._tail.items():
                for d, j in lst:
                    rs.append(r)
                    ds.append(d)
                    js.append(j)
            self._add_segment(np.array(rs, dtype=np.int64), np.array(ds, dtype=np.int64), np.array(js, dtype=np.int64))
        self._tail = {}
        self._tail_items = 0

    def _add_segment(self, r: np.ndarray, d: np.ndarray, j: np.ndarray) -> None:
        if not len(r):
            return
        o = np.argsort(r, kind="stable")
        segs = self._segments
        segs.append((r[o], d[o], j[o]))
        # LSM merge: keep segment sizes geometrically decreasing -> O(log N) segments
        while len(segs) >= 2 and len(segs[-2][0]) <= 2 * len(segs[-1][0]):
            a, b = segs.pop(), segs.pop()
            r2 = np.concatenate((b[0], a[0]))
            o = np.argsort(r2, kind="stable")  # two sorted runs: linear-time merge
            segs.append((r2[o], np.concatenate((b[1], a[1]))[o], np.concatenate((b[2], a[2]))[o]))

    # -- search ------------------------------------------------------------

    def _search_segments(self, pq, pr, pi, qlen, qenc):
        """Best verified match in the numpy segments for a block of queries.

        pq/pr/pi: query index, element rank and prefix position of every probe entry
        (sorted by query, then position); qlen: token count per query; qenc: encodings.
        Returns (best_score, best_doc) arrays; best_doc = -1 where nothing scored.
        """
        nq = len(qlen)
        best_f = np.zeros(nq, dtype=np.float64)
        best_d = np.full(nq, -1, dtype=np.int64)
        if not self._segments or not len(pr):
            return best_f, best_d
        g = self._g
        lens = self._lens_np
        parts_e, parts_d, parts_j = [], [], []
        for seg_r, seg_d, seg_j in self._segments:
            lo = np.searchsorted(seg_r, pr, "left")
            cnt = np.searchsorted(seg_r, pr, "right") - lo
            sel = np.flatnonzero(cnt)
            if not len(sel):
                continue
            cnt = cnt[sel]
            total = int(cnt.sum())
            ends = np.cumsum(cnt)
            idx = np.arange(total) - np.repeat(ends - cnt - lo[sel], cnt)
            parts_e.append(np.repeat(sel, cnt))
            parts_d.append(seg_d[idx])
            parts_j.append(seg_j[idx])
        if not parts_e:
            return best_f, best_d
        e = np.concatenate(parts_e)
        d = np.concatenate(parts_d)
        j = np.concatenate(parts_j)
        q = pq[e]
        m = qlen[q]
        n = lens[d]
        # length filter (also implied by the positional bound; cheap pre-cut)
        ok = _lmin_np(g, m, n) <= np.minimum(m, n)
        if not ok.all():
            e, d, j, q, m, n = e[ok], d[ok], j[ok], q[ok], m[ok], n[ok]
        if not len(e):
            return best_f, best_d
        i = pi[e]
        # group entries by pair (q, d); stable sort keeps prefix positions ascending
        key = q * len(self._keys) + d
        o = np.argsort(key, kind="stable")
        key, d, q, m, n, i, j = key[o], d[o], q[o], m[o], n[o], i[o], j[o]
        first = np.empty(len(key), dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        k0 = np.arange(len(key)) - np.repeat(starts, np.diff(np.append(starts, len(key))))
        # positional filter: with k0 earlier matches, overlap <= k0 + min(m - i, n - j)
        bound = np.minimum.reduceat(k0 + np.minimum(m - i, n - j), starts)
        gcount = np.diff(np.append(starts, len(key)))
        d, q, m, n = d[starts], q[starts], m[starts], n[starts]
        need = _lmin_np(g, m, n)
        ok = (bound >= need) & (gcount >= np.minimum(need, _ELL))
        d, q, m, n = d[ok], q[ok], m[ok], n[ok]
        if not len(d):
            return best_f, best_d
        enc = self._enc
        lcs = _lcs_many([qenc[x] for x in q.tolist()], [enc[x] for x in d.tolist()])
        f = _fmeasure_np(lcs, m, n)
        # best per query: highest score, ties -> earliest inserted item
        o = np.lexsort((d, -f, q))
        q, d, f = q[o], d[o], f[o]
        head = np.ones(len(q), dtype=bool)
        np.not_equal(q[1:], q[:-1], out=head[1:])
        best_f[q[head]] = f[head]
        best_d[q[head]] = d[head]
        return best_f, best_d

    def _search_tail(self, enc, m: int, prefix, best_f: float, best_d: int):
        tail = self._tail
        if not tail:
            return best_f, best_d
        lens = self._lens
        cand: dict[int, list[int]] = {}
        for i, r in enumerate(prefix):
            lst = tail.get(r)
            if lst is None:
                continue
            mi = m - i
            for d, j in lst:
                nj = lens[d] - j
                b = mi if mi < nj else nj
                c = cand.get(d)
                if c is None:
                    cand[d] = [1, b]
                else:
                    b += c[0]
                    c[0] += 1
                    if b < c[1]:
                        c[1] = b
        if not cand:
            return best_f, best_d
        g = self._g
        encs = self._enc
        for d, (_, bound) in cand.items():
            n = lens[d]
            if bound < _lmin(g, m, n):  # positional bound (implies the length filter)
                continue
            f = _fmeasure(LCSseq.similarity(enc, encs[d]), m, n)
            if f > best_f or (f == best_f and f > 0.0 and d < best_d):
                best_f, best_d = f, d
        return best_f, best_d

    def _match_one(self, p: _Prepared) -> Match:
        if self._segments and p.prefix:
            bf, bd = self._search_segments(
                np.zeros(len(p.prefix), dtype=np.int64),
                np.asarray(p.prefix, dtype=np.int64),
                np.arange(len(p.prefix), dtype=np.int64),
                np.array([p.m], dtype=np.int64),
                [p.enc],
            )
            best_f, best_d = float(bf[0]), int(bd[0])
        else:
            best_f, best_d = 0.0, -1
        best_f, best_d = self._search_tail(p.enc, p.m, p.prefix, best_f, best_d)
        if best_d < 0:
            return Match(False, None, 0.0)
        return Match(best_f > self.threshold, self._keys[best_d], best_f)

    # -- public API --------------------------------------------------------

    def add(self, text: str, key: str) -> None:
        """Add ``text`` unconditionally (seed tasks, resume replay)."""
        self._commit(self._prep(text), key, text)

    def query(self, text: str) -> Match:
        """Best match of ``text`` in the pool; does not modify the index."""
        return self._match_one(self._prep(text))

    def check_add(self, text: str, key: str) -> Match:
        """Query; add ``text`` under ``key`` if it is not a duplicate."""
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
                raise ValueError("inconsistent RougeIndex state: element missing from order table")
            idx._commit(p, key, text)
        return idx


# ---------------------------------------------------------------------------
# batch dedup
# ---------------------------------------------------------------------------


def _batch_prepare(texts: Sequence[str], plen_np: Callable[[np.ndarray], np.ndarray]):
    """Tokenize all texts once; global rare-first element order; prefixes.

    Returns (enc list, lens, pref_off, pref_rank, pref_pos): the prefix entries of
    text x are pref_rank/pref_pos[pref_off[x]:pref_off[x+1]] (ranks ascending).
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
    offs = np.zeros(nt + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    # encodings: one code point per token (surrogates skipped), sliced from one string
    if nv <= _MAX_CHR_IDS:
        cps = np.where(ids < 0xD800, ids, ids + 0x800).astype("<u4")
        big = cps.tobytes().decode("utf-32-le")
        del cps
        ol = offs.tolist()
        enc = [big[ol[x] : ol[x + 1]] for x in range(nt)]
        del big
        str_mode = True
    else:
        il = ids.tolist()
        ol = offs.tolist()
        enc = [tuple(il[ol[x] : ol[x + 1]]) for x in range(nt)]
        str_mode = False
    if not len(ids):
        z = np.zeros(0, dtype=np.int64)
        return enc, str_mode, lens, np.zeros(nt + 1, dtype=np.int64), z, z
    doc = np.repeat(np.arange(nt, dtype=np.int64), lens)
    # k = occurrence number of the token within its text -> element (token, k)
    o = np.argsort(doc * nv + ids, kind="stable")
    sk = (doc * nv + ids)[o]
    newg = np.empty(len(sk), dtype=bool)
    newg[0] = True
    np.not_equal(sk[1:], sk[:-1], out=newg[1:])
    gstart = np.flatnonzero(newg)
    k = np.arange(len(sk)) - np.repeat(gstart, np.diff(np.append(gstart, len(sk))))
    elem_key = k * nv + ids[o]  # element key, in sorted-token order
    del sk, newg, gstart, k
    uniq, inv, counts = np.unique(elem_key, return_inverse=True, return_counts=True)
    del elem_key
    # global order: rare first (document frequency of the element), ties by key
    rank_of = np.empty(len(uniq), dtype=np.int64)
    rank_of[np.lexsort((uniq, counts))] = np.arange(len(uniq), dtype=np.int64)
    ne = len(uniq)
    del uniq, counts
    r = rank_of[inv.reshape(-1)]
    dsorted = doc[o]
    del rank_of, inv, o, doc
    # sort each text's elements by rank
    sk = np.sort(dsorted * ne + r)
    del dsorted, r
    pdoc = sk // ne
    prank = sk - pdoc * ne
    del sk
    pos = np.arange(len(pdoc), dtype=np.int64) - offs[pdoc]
    keep = pos < plen_np(lens)[pdoc]
    plen_counts = np.bincount(pdoc[keep], minlength=nt)
    pref_off = np.zeros(nt + 1, dtype=np.int64)
    np.cumsum(plen_counts, out=pref_off[1:])
    return enc, str_mode, lens, pref_off, prank[keep], pos[keep]


_BLOCK = 2048


def dedup(
    texts: Sequence[str],
    threshold: float = 0.7,
    pool: Sequence[str] = (),
    floor: float | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[Match]:
    """Greedy ROUGE-L dedup of ``texts`` in order (Alpaca semantics, exact).

    ``pool`` items are pre-loaded (keys ``"pool:<i>"``); kept texts get key ``"<i>"``
    (index in ``texts``).  Returns one :class:`Match` per text; ``duplicate=True``
    means the text was dropped.  ``progress(n_done)`` is called after each block.
    """
    texts = list(texts)
    pool = list(pool)
    idx = RougeIndex(threshold, floor)
    idx._order = None  # batch index: global element order, no incremental use
    npool = len(pool)
    allt = pool + texts
    enc, str_mode, lens, pref_off, pref_rank, pref_pos = _batch_prepare(allt, idx._plen_np)
    idx._str_mode = str_mode
    # pre-loaded pool: one segment, built directly
    for x in range(npool):
        idx._append_item(f"pool:{x}", pool[x], enc[x], int(lens[x]))
    if npool:
        a, b = 0, int(pref_off[npool])
        pdoc = np.repeat(np.arange(npool, dtype=np.int64), np.diff(pref_off[: npool + 1]))
        idx._add_segment(pref_rank[a:b].copy(), pdoc, pref_pos[a:b].copy())

    out: list[Match] = []
    thr = idx.threshold
    keys = idx._keys
    n = len(texts)
    done = 0
    for b0 in range(npool, npool + n, _BLOCK):
        b1 = min(b0 + _BLOCK, npool + n)
        nb = b1 - b0
        lo, hi = int(pref_off[b0]), int(pref_off[b1])
        cnts = np.diff(pref_off[b0 : b1 + 1])
        pq = np.repeat(np.arange(nb, dtype=np.int64), cnts)
        pr = pref_rank[lo:hi]
        pi = pref_pos[lo:hi]
        qlen = lens[b0:b1]
        qenc = enc[b0:b1]
        best_f, best_d = idx._search_segments(pq, pr, pi, qlen, qenc)
        best_f_l = best_f.tolist()
        best_d_l = best_d.tolist()
        pr_l = pr.tolist()
        po = (pref_off[b0 : b1 + 1] - lo).tolist()
        qlen_l = qlen.tolist()
        kept_local = np.zeros(nb, dtype=bool)
        first_new = len(keys)
        for x in range(nb):
            prefix = pr_l[po[x] : po[x + 1]]
            bf, bd = idx._search_tail(qenc[x], qlen_l[x], prefix, best_f_l[x], best_d_l[x])
            if bd < 0:
                match = Match(False, None, 0.0)
            else:
                match = Match(bf > thr, keys[bd], bf)
            out.append(match)
            if not match.duplicate:
                t = b0 + x - npool
                d = idx._append_item(str(t), texts[t], qenc[x], qlen_l[x])
                idx._tail_add(d, prefix)
                kept_local[x] = True
        # move this block's postings into a numpy segment (vectorised)
        idx._tail = {}
        idx._tail_items = 0
        sel = kept_local[pq]
        if sel.any():
            newid = np.cumsum(kept_local) - 1 + first_new
            idx._add_segment(pr[sel].copy(), newid[pq[sel]], pi[sel].copy())
        done += nb
        if progress is not None:
            progress(done)
    return out
