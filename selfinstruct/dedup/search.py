"""Candidate verification of the ROUGE-L index: every pair that could score above g.

Queries come grouped by prefix element.  For each group the element's posting list
gives the candidate items: only the item lengths that pass the length filter and the
positional filter (for where the element sits in each query) are read, and a split
list's "extra" zone only for queries shorter than the items (see :mod:`.postings`).

Candidates are verified in C: one ``rapidfuzz.process.cdist`` call (Indel distance
with a cutoff) per posting list and group of queries, the exact LCS recovered from
the distance; small groups are pooled into one ``cpdist`` call.  With
``within_block`` the queries are also compared with each other (a block of batch
texts): a length-banded self-join per element.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import repeat
from typing import Sequence

import numpy as np
from rapidfuzz import process as rf_process
from rapidfuzz.distance import Indel, LCSseq

from .postings import Posting, Postings
from .score import UNBOUNDED, Bounds, f_measure_array, min_lcs_array

__all__ = ["BIG_GROUP", "MAX_CELLS", "MAX_PENDING", "verify_groups"]

# a (posting list, queries) group with at least this many pairs gets its own cdist
# call; smaller groups are pooled into one cpdist call
BIG_GROUP = 32
# at most this many cells per cdist matrix, and pending candidate pairs
MAX_CELLS = 1 << 22
MAX_PENDING = 1 << 21


def verify_groups(
    bounds: Bounds,
    postings: Postings,
    item_lens: np.ndarray,
    query_encs: Sequence,
    query_lens: Sequence[int],
    group_ranks: Sequence[int],
    entry_query: Sequence[int],
    entry_position: Sequence[int],
    group_start: Sequence[int],
    group_end: Sequence[int],
    within_block: bool,
):
    """Verify every pair that could score above ``bounds.verify_above`` (g).

    Queries are ``query_encs``/``query_lens`` (ids local to the call).  Group t has
    element rank ``group_ranks[t]``; its entries x in ``group_start[t]:group_end[t]``
    are query ``entry_query[x]`` (ascending) having that element at prefix position
    ``entry_position[x]``.  ``item_lens[d]`` is the length of index item d.
    Returns (best_score, best_item) arrays per query against the index
    (best_item = -1: nothing above g) and, if ``within_block``, a dict
    q2 -> [(q1, f), ...] of query pairs q1 < q2 with f > g.
    """
    n_queries = len(query_lens)
    g = bounds.verify_above
    max_distance = bounds.max_distance
    by_rank = postings.by_rank
    geometry = bounds.geometry
    cdist = rf_process.cdist
    best_score = np.zeros(n_queries, dtype=np.float64)
    best_item = np.full(n_queries, -1, dtype=np.int64)
    qlen_np = np.asarray(query_lens, dtype=np.int64)
    # pairs found by cdist: (queries, items, normalized indel distances)
    cdist_queries: list[np.ndarray] = []
    cdist_items: list[np.ndarray] = []
    cdist_dists: list[np.ndarray] = []
    cdist_pending = [0]
    # pooled small groups (one cpdist call)
    pooled_queries: list[int] = []
    pooled_items: list[int] = []
    pooled_query_encs: list = []
    pooled_item_encs: list = []

    def merge(q, d, lcs):
        """Exact scores of (query, item, LCS) triples -> best per query so far."""
        m = qlen_np[q]
        n = item_lens[d]
        keep = lcs >= min_lcs_array(g, m, n)
        q, d, m, n, lcs = q[keep], d[keep], m[keep], n[keep], lcs[keep]
        f = f_measure_array(lcs, m, n)
        keep = f > g
        q, d, f = q[keep], d[keep], f[keep]
        if not len(q):
            return
        old = np.flatnonzero(best_item >= 0)
        q = np.concatenate((q, old))
        d = np.concatenate((d, best_item[old]))
        f = np.concatenate((f, best_score[old]))
        # best per query: highest score, ties -> earliest item
        o = np.lexsort((d, -f, q))
        q, d, f = q[o], d[o], f[o]
        head = np.ones(len(q), dtype=bool)
        np.not_equal(q[1:], q[:-1], out=head[1:])
        best_score[q[head]] = f[head]
        best_item[q[head]] = d[head]

    def flush_cdist():
        if cdist_queries:
            q = np.concatenate(cdist_queries)
            d = np.concatenate(cdist_items)
            mn = qlen_np[q] + item_lens[d]
            # exact integer distance back from dist / (m + n) (error << 0.5)
            dist = np.rint(np.concatenate(cdist_dists) * mn).astype(np.int64)
            del cdist_queries[:], cdist_items[:], cdist_dists[:]
            cdist_pending[0] = 0
            merge(q, d, (mn - dist) // 2)

    def flush_pooled():
        if pooled_queries:
            lcs = rf_process.cpdist(pooled_query_encs, pooled_item_encs, scorer=LCSseq.similarity, dtype=np.int64)
            q = np.asarray(pooled_queries, dtype=np.int64)
            d = np.asarray(pooled_items, dtype=np.int64)
            del pooled_queries[:], pooled_items[:], pooled_query_encs[:], pooled_item_encs[:]
            merge(q, d, lcs)

    def verify(qids, encs, items):
        """Queue every pair of queries ``qids`` x items (``encs``, ``items``)."""
        n_items = len(items)
        if len(qids) * n_items >= BIG_GROUP:
            step = max(1, MAX_CELLS // n_items)  # bound the matrix size
            for s0 in range(0, len(qids), step):
                part = qids[s0 : s0 + step]
                mat = cdist(
                    [query_encs[q] for q in part],
                    encs,
                    scorer=Indel.normalized_distance,
                    score_cutoff=max_distance,
                    dtype=np.float64,
                )
                rows, cols = np.nonzero(mat < 1.0)
                if len(rows):
                    cdist_queries.append(np.asarray(part, dtype=np.int64)[rows])
                    cdist_items.append(np.fromiter(map(items.__getitem__, cols.tolist()), np.int64, len(cols)))
                    cdist_dists.append(mat[rows, cols])
                    cdist_pending[0] += len(rows)
            if cdist_pending[0] > MAX_PENDING:
                flush_cdist()
        else:
            for q in qids:
                pooled_queries.extend(repeat(q, n_items))
                pooled_items.extend(items)
                pooled_query_encs.extend(repeat(query_encs[q], n_items))
                pooled_item_encs.extend(encs)
            if len(pooled_queries) > MAX_PENDING:
                flush_pooled()

    # block-internal pairs: from cdist (first, second, distance), pooled (first, second)
    inner_first: list = []
    inner_second: list = []
    inner_dists: list = []
    pooled_first: list[int] = []
    pooled_second: list[int] = []
    for t in range(len(group_ranks)):
        a, b = group_start[t], group_end[t]
        entry = by_rank.get(group_ranks[t])
        if entry is not None:
            # (query, m, admissible partner lengths) of each entry of the group
            ents = []
            lo_n, hi_n = UNBOUNDED, -1
            for x in range(a, b):
                q = entry_query[x]
                m = query_lens[q]
                _, nlo, nhi = geometry(m)
                nh = nhi[entry_position[x]]
                if nh >= nlo:
                    ents.append((q, m, nlo, nh))
                    if nlo < lo_n:
                        lo_n = nlo
                    if nh > hi_n:
                        hi_n = nh
            if ents and type(entry) is Posting:
                # short list: verify it whole
                verify([e[0] for e in ents], entry.encs, entry.items)
            elif ents:
                if hi_n - lo_n + 1 < len(entry):
                    by_len = [(n, entry[n]) for n in range(lo_n, hi_n + 1) if n in entry]
                else:
                    by_len = [(n, v) for n, v in entry.items() if lo_n <= n <= hi_n]
                single = len(ents) == 1
                for n, parts in by_len:
                    sel = ents if single else [e for e in ents if e[2] <= n <= e[3]]
                    for zone in (0, 1):
                        posting = parts[zone]
                        if posting is None:
                            continue
                        if zone == 1:  # extra zone: only partners shorter than n
                            sel = [e for e in sel if e[1] < n]
                        if not sel:
                            break
                        verify([e[0] for e in sel], posting.encs, posting.items)
        if within_block and b - a >= 2:
            qs = entry_query[a:b]
            k = b - a
            if k * k >= 2 * BIG_GROUP:
                # sort by length; each row is compared with the later (not
                # shorter) members its length filter admits, in bands of rows
                srt = sorted(qs, key=query_lens.__getitem__)
                sorted_lens = [query_lens[q] for q in srt]
                sorted_encs = [query_encs[q] for q in srt]
                sorted_ids = np.asarray(srt, dtype=np.int64)
                s0 = 0
                while s0 < k:
                    s1 = min(k, s0 + 16)
                    while s1 < k and sorted_lens[s1] == sorted_lens[s1 - 1]:
                        s1 += 1
                    c1 = bisect_right(sorted_lens, geometry(sorted_lens[s1 - 1])[2][0], s0)
                    mat = cdist(
                        sorted_encs[s0:s1],
                        sorted_encs[s0:c1],
                        scorer=Indel.normalized_distance,
                        score_cutoff=max_distance,
                        dtype=np.float64,
                    )
                    rows, cols = np.nonzero(mat < 1.0)
                    up = cols > rows
                    rows, cols = rows[up], cols[up]
                    if len(rows):
                        qa = sorted_ids[s0 + rows]
                        qb = sorted_ids[s0 + cols]
                        inner_first.append(np.minimum(qa, qb))
                        inner_second.append(np.maximum(qa, qb))
                        inner_dists.append(mat[rows, cols])
                    s0 = s1
            else:
                for x in range(k - 1):
                    pooled_first.extend(repeat(qs[x], k - 1 - x))
                    pooled_second.extend(qs[x + 1 :])

    flush_cdist()
    flush_pooled()
    # ---- inside the block
    pairs: dict[int, list] = {}
    if within_block:
        firsts, seconds, lcss = [], [], []
        if inner_first:
            q1 = np.concatenate(inner_first)
            q2 = np.concatenate(inner_second)
            firsts.append(q1)
            seconds.append(q2)
            mn = qlen_np[q1] + qlen_np[q2]
            lcss.append((mn - np.rint(np.concatenate(inner_dists) * mn).astype(np.int64)) // 2)
        if pooled_first:
            firsts.append(np.asarray(pooled_first, dtype=np.int64))
            seconds.append(np.asarray(pooled_second, dtype=np.int64))
            lcss.append(
                rf_process.cpdist(
                    [query_encs[x] for x in pooled_first],
                    [query_encs[x] for x in pooled_second],
                    scorer=LCSseq.similarity,
                    dtype=np.int64,
                )
            )
        if firsts:
            q1 = np.concatenate(firsts)
            q2 = np.concatenate(seconds)
            lcs = np.concatenate(lcss)
            m = qlen_np[q2]  # q2 is the new text (target), q1 the earlier one
            n = qlen_np[q1]
            keep = lcs >= min_lcs_array(g, m, n)
            q1, q2, m, n, lcs = q1[keep], q2[keep], m[keep], n[keep], lcs[keep]
            f = f_measure_array(lcs, m, n)
            keep = f > g
            for first, second, score in zip(q1[keep].tolist(), q2[keep].tolist(), f[keep].tolist()):
                lst = pairs.get(second)
                if lst is None:
                    pairs[second] = [(first, score)]
                else:
                    lst.append((first, score))
    return best_score, best_item, pairs
