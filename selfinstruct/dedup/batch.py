"""Batch greedy ROUGE-L dedup (:func:`dedup`), built on :class:`RougeIndex`'s public API.

All texts (pool and candidates) are tokenized at once and get one global rare-first
element order, so prefixes are as selective as they can be; the index is built with
``external_order=True`` and fed encodings and prefixes.  Candidates are processed in
blocks: the block is searched against the index grouped by element, pairs inside the
block come from a length-banded self-join per element, then the greedy keep/drop
decisions are made in order.  With a low floor the blocks would hold too many pairs
and texts are decided one by one, like the incremental API.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import score
from .index import NO_MATCH, Match, RougeIndex
from .score import TOKEN_RE

__all__ = ["BLOCK_SIZE", "SEQUENTIAL_BELOW", "dedup"]

# at most this many texts per block
BLOCK_SIZE = 65536
# dedup() decides text by text when min(floor, threshold) is below this
SEQUENTIAL_BELOW = 0.3


def _prepare(texts: Sequence[str], prefix_lens: Callable[[np.ndarray], np.ndarray]):
    """Tokenize all texts once; global rare-first element order; prefixes.

    Returns (encs, lens, prefix_offsets, prefix_ranks): the prefix of text x is
    prefix_ranks[prefix_offsets[x]:prefix_offsets[x + 1]] (ranks ascending).  Encodings
    are strings, or tuples of ints beyond ``score.MAX_CHR_IDS`` distinct tokens.
    """
    n_texts = len(texts)
    vocab: dict[str, int] = {}
    flat: list[int] = []
    lens = np.empty(n_texts, dtype=np.int64)
    findall = TOKEN_RE.findall
    setdef = vocab.setdefault
    for x, text in enumerate(texts):
        toks = findall(text.lower())
        lens[x] = len(toks)
        flat.extend([setdef(t, len(vocab)) for t in toks])
    n_vocab = max(len(vocab), 1)
    ids = np.array(flat, dtype=np.int64)
    del flat
    # frequent tokens get small ids (code points < 256 take rapidfuzz's fast path)
    remap = np.empty(n_vocab, dtype=np.int64)
    remap[np.argsort(-np.bincount(ids, minlength=n_vocab), kind="stable")] = np.arange(n_vocab, dtype=np.int64)
    ids = remap[ids]
    del remap
    offs = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    ol = offs.tolist()
    # encodings: one code point per token (surrogates skipped), sliced from one string
    if n_vocab <= score.MAX_CHR_IDS:
        big = np.where(ids < 0xD800, ids, ids + 0x800).astype("<u4").tobytes().decode("utf-32-le")
        encs = [big[ol[x] : ol[x + 1]] for x in range(n_texts)]
        del big
    else:
        il = ids.tolist()
        encs = [tuple(il[ol[x] : ol[x + 1]]) for x in range(n_texts)]
    if not len(ids):
        return encs, lens, np.zeros(n_texts + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    doc = np.repeat(np.arange(n_texts, dtype=np.int64), lens)
    # k = occurrence number of the token within its text -> element (token, k)
    dk = doc * n_vocab + ids
    o = np.argsort(dk, kind="stable")
    sk = dk[o]
    del dk
    newg = np.empty(len(sk), dtype=bool)
    newg[0] = True
    np.not_equal(sk[1:], sk[:-1], out=newg[1:])
    gstart = np.flatnonzero(newg)
    k = np.arange(len(sk)) - np.repeat(gstart, np.diff(np.append(gstart, len(sk))))
    del sk, newg, gstart
    uniq, inv, counts = np.unique(k * n_vocab + ids[o], return_inverse=True, return_counts=True)
    del k
    # global order: rare first (number of texts having the element), ties by key
    rank_of = np.empty(len(uniq), dtype=np.int64)
    rank_of[np.lexsort((uniq, counts))] = np.arange(len(uniq), dtype=np.int64)
    n_elems = len(uniq)
    del uniq, counts
    r = rank_of[inv.reshape(-1)]
    dsorted = doc[o]
    del rank_of, inv, o, doc
    # each text's elements sorted by rank
    sk = np.sort(dsorted * n_elems + r)
    del dsorted, r
    pdoc = sk // n_elems
    prank = sk - pdoc * n_elems
    del sk
    pos = np.arange(len(pdoc), dtype=np.int64) - offs[pdoc]
    keep = pos < prefix_lens(lens)[pdoc]
    prefix_offsets = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(pdoc[keep], minlength=n_texts), out=prefix_offsets[1:])
    return encs, lens, prefix_offsets, prank[keep]


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
    after each block of texts.  ``floor`` is :class:`RougeIndex`'s.
    """
    texts = list(texts)
    pool = list(pool)
    n_pool = len(pool)
    idx = RougeIndex(threshold, floor, external_order=True)
    encs, lens, prefix_offsets, prefix_ranks = _prepare(pool + texts, idx.bounds.prefix_lens)
    lens_l = lens.tolist()
    offsets = prefix_offsets.tolist()
    for x in range(n_pool):
        idx.add_encoded(f"pool:{x}", pool[x], encs[x], lens_l[x], prefix_ranks[offsets[x] : offsets[x + 1]].tolist())

    out: list[Match] = []
    threshold = idx.threshold  # as a float
    n = len(texts)
    g = idx.bounds.verify_above
    if g < SEQUENTIAL_BELOW:
        # low floor: prefixes are (nearly) whole texts and blocks would hold too
        # many pairs; decide text by text like the incremental API
        for t in range(n):
            x = n_pool + t
            prefix = prefix_ranks[offsets[x] : offsets[x + 1]].tolist()
            match = idx.match_encoded(encs[x], lens_l[x], prefix)
            out.append(match)
            if not match.duplicate:
                idx.add_encoded(str(t), texts[t], encs[x], lens_l[x], prefix)
            if progress is not None and ((t + 1) % 4096 == 0 or t + 1 == n):
                progress(t + 1)
        return out
    has_postings = np.zeros(int(prefix_ranks.max()) + 1 if len(prefix_ranks) else 1, dtype=bool)
    for r in idx.posted_ranks():
        has_postings[r] = True
    # pairs inside a block are all kept while the block is decided; with a lower
    # floor there are more of them, so blocks get smaller
    block = min(BLOCK_SIZE, 1 << 16 if g >= 0.6 else 1 << 14 if g >= 0.45 else 1 << 12)
    done = 0
    pending: list = []  # (item, prefix) of kept texts whose postings are deferred
    for b0 in range(n_pool, n_pool + n, block):
        b1 = min(b0 + block, n_pool + n)
        # postings of the previous block's kept texts (deferred: the last block
        # needs none, its texts are compared in-block)
        for item, prefix in pending:
            idx.post_prefix(item, prefix)
            has_postings[prefix] = True
        pending = []
        n_block = b1 - b0
        lo, hi = offsets[b0], offsets[b1]
        block_ranks = prefix_ranks[lo:hi]
        # block-local query of each prefix entry
        entry_query = np.repeat(np.arange(n_block, dtype=np.int64), np.diff(prefix_offsets[b0 : b1 + 1]))
        # group the block's prefix entries by element
        o = np.lexsort((entry_query, block_ranks))
        sorted_ranks = block_ranks[o]
        if len(sorted_ranks):
            cut = np.flatnonzero(sorted_ranks[1:] != sorted_ranks[:-1]) + 1
            group_start = np.concatenate(([0], cut))
            group_end = np.concatenate((cut, [len(sorted_ranks)]))
            group_ranks = sorted_ranks[group_start]
            # only groups with postings or with several block texts can yield pairs
            use = np.flatnonzero(((group_end - group_start) >= 2) | has_postings[group_ranks])
            group_start = group_start[use].tolist()
            group_end = group_end[use].tolist()
            group_ranks = group_ranks[use].tolist()
        else:
            group_start, group_end, group_ranks = [], [], []
        query_encs = encs[b0:b1]
        query_lens = lens_l[b0:b1]
        entry_position = (np.arange(hi - lo, dtype=np.int64) - (prefix_offsets[b0:b1] - lo)[entry_query])[o].tolist()
        best_score, best_item, pairs = idx.search_block(
            query_encs, query_lens, group_ranks, entry_query[o].tolist(), entry_position, group_start, group_end, True
        )
        best_score = best_score.tolist()
        best_item = best_item.tolist()
        block_ranks_l = block_ranks.tolist()
        block_offsets = [p - lo for p in offsets[b0 : b1 + 1]]
        kept_item = [-1] * n_block  # index item id of kept block texts
        for x in range(n_block):
            score_x, item_x = best_score[x], best_item[x]
            for earlier, f in pairs.get(x, ()):
                earlier_item = kept_item[earlier]
                if earlier_item >= 0 and (f > score_x or (f == score_x and earlier_item < item_x)):
                    score_x, item_x = f, earlier_item
            if item_x < 0:
                match = NO_MATCH
            else:
                match = Match(score_x > threshold, idx.key(item_x), score_x)
            out.append(match)
            if not match.duplicate:
                t = b0 + x - n_pool
                item = kept_item[x] = idx.add_encoded(str(t), texts[t], query_encs[x], query_lens[x], None)
                pending.append((item, block_ranks_l[block_offsets[x] : block_offsets[x + 1]]))
        done += n_block
        if progress is not None:
            progress(done)
    return out
