"""The incremental exact ROUGE-L index (:class:`RougeIndex`).

How it is fast, and why it stays exact:

* Each text is tokenized once; tokens become integer ids and a token sequence is
  encoded as a ``str`` with one code point per token (tuples of ints beyond
  ``score.MAX_CHR_IDS`` distinct tokens), so LCS lengths are computed exactly by
  rapidfuzz in C.
* ``L <= min(m, n)`` (length filter) and ``L`` is at most the multiset overlap of the
  token sequences.  Multisets become sets of elements ``(token, k-th occurrence)``.
  Under a fixed global element order (rare first; in an incrementally grown index,
  elements get their place when first seen, as the rarest so far, and keep it), two
  texts whose overlap reaches the minimum LCS needed share an element within the
  first ``s - alpha(s) + 1`` elements of each (prefix filtering, AllPairs/PPJoin:
  ``score.prefix_length``), and the first shared element sits early enough in both
  texts (positional filter: ``score.Bounds.geometry``).
* The index maps each element to the items having it in their prefix
  (:mod:`.postings`); a query reads only the candidates its filters admit and
  verifies them in C (:mod:`.search`).  When the candidates would cover the pool
  (e.g. ``floor=0``) one call scores all items instead.

With ``external_order=True`` the caller owns the element order, the encodings and
the prefixes (batch :func:`selfinstruct.dedup.batch.dedup` computes a global order
over all its texts at once) and uses the ``*_encoded`` / :meth:`search_block`
methods; the text methods (``add``, ``query``, ``check_add``, ``state``) are then
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from rapidfuzz import process as rf_process
from rapidfuzz.distance import Indel

from . import score
from .postings import Postings
from .score import Bounds, char_to_id, f_measure_array, id_to_char, min_lcs_array, tokenize
from .search import verify_groups

__all__ = ["Match", "RougeIndex"]

STATE_FORMAT = "selfinstruct.rouge/1"  # kept from the module's old name: saved states stay readable


@dataclass(frozen=True)
class Match:
    duplicate: bool  # max score > threshold
    nearest: str | None  # key of the best-scoring pool item found (None if none scored)
    score: float  # its score (0.0 if none)


NO_MATCH = Match(False, None, 0.0)


class _Prepared:
    __slots__ = ("enc", "length", "prefix", "new_tokens", "new_elems")

    def __init__(self, enc, length, prefix, new_tokens, new_elems):
        self.enc = enc  # encoded token sequence (str, or tuple of ints)
        self.length = length  # number of tokens
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

    ``external_order``: the caller supplies the element order, encodings and
    prefixes (see the module docstring).
    """

    def __init__(
        self,
        threshold: float = 0.7,
        floor: float | None = None,
        *,
        external_order: bool = False,
    ):
        threshold = float(threshold)
        if not threshold >= 0.0:
            raise ValueError("threshold must be >= 0")
        self.threshold = threshold
        self.floor = threshold if floor is None else float(floor)
        # every pair that could score above min(floor, threshold) is verified
        self.bounds = Bounds(min(max(self.floor, 0.0), threshold))
        # vocabulary: token -> id (code point for the LCS strings)
        self._token_ids: dict[str, int] = {}
        # str encodings until the vocabulary outgrows code points (incremental only:
        # with an external order the caller's encodings are stored as given)
        self._tuple_encoding = False
        # element order: token -> ranks of its 1st, 2nd, ... occurrence.  Ranks never
        # change; unseen elements get ranks below all existing ones (treated as rare).
        # None: the order is external (batch).
        self._order: dict[str, list[int]] | None = None if external_order else {}
        self._next_rank = -1
        # items
        self._keys: list[str] = []
        self._texts: list[str] = []
        self._encs: list = []
        self._lens: list[int] = []
        self._lens_np = np.zeros(256, dtype=np.int64)
        self._postings = Postings(self.bounds, self._lens)

    # -- basics ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def external_order(self) -> bool:
        return self._order is None

    @property
    def tuple_encoding(self) -> bool:
        """Whether this incremental index encodes token sequences as tuples of ints (else as strings)."""
        return self._tuple_encoding

    def key(self, item: int) -> str:
        """Key of item ``item`` (items are numbered 0, 1, ... in order of addition)."""
        return self._keys[item]

    def _to_tuple_encoding(self) -> None:
        if not self._tuple_encoding:
            self._tuple_encoding = True
            self._encs = [tuple(map(char_to_id, e)) for e in self._encs]
            self._postings.reencode(self._encs)

    def _append_item(self, key: str, text: str, enc, length: int, prefix) -> int:
        """Add an item (and its postings, unless ``prefix`` is empty or None)."""
        item = len(self._keys)
        self._keys.append(key)
        self._texts.append(text)
        self._encs.append(enc)
        self._lens.append(length)
        if item >= len(self._lens_np):
            self._lens_np = np.concatenate((self._lens_np, np.zeros(len(self._lens_np), dtype=np.int64)))
        self._lens_np[item] = length
        if prefix:
            self._postings.add(item, enc, length, prefix)
        return item

    # -- incremental preparation -------------------------------------------

    def _prep(self, text: str) -> _Prepared:
        if self._order is None:
            raise RuntimeError("this index has an external element order and takes no text queries")
        tokens = tokenize(text)
        token_ids = self._token_ids
        base = len(token_ids)
        new_tokens: dict[str, int] = {}
        ids = []
        for t in tokens:
            x = token_ids.get(t)
            if x is None:
                x = new_tokens.get(t)
                if x is None:
                    x = new_tokens[t] = base + len(new_tokens)
            ids.append(x)
        if not self._tuple_encoding and base + len(new_tokens) > score.MAX_CHR_IDS:
            self._to_tuple_encoding()  # representation change only
        order = self._order
        occurrences: dict[str, int] = {}
        ranks = []
        new_elems = []
        next_rank = self._next_rank
        for t in tokens:
            k = occurrences.get(t, 0)
            occurrences[t] = k + 1
            known = order.get(t)
            if known is not None and k < len(known):
                ranks.append(known[k])
            else:
                ranks.append(next_rank)
                new_elems.append(t)
                next_rank -= 1
        ranks.sort()
        length = len(tokens)
        enc = tuple(ids) if self._tuple_encoding else "".join(map(id_to_char, ids))
        return _Prepared(enc, length, ranks[: self.bounds.prefix_len(length)], list(new_tokens), new_elems)

    def _commit(self, p: _Prepared, key: str, text: str) -> None:
        token_ids = self._token_ids
        for t in p.new_tokens:  # same ids as the temporary ones used by _prep
            token_ids[t] = len(token_ids)
        order = self._order
        for t in p.new_elems:  # same ranks as the temporary ones used by _prep
            order.setdefault(t, []).append(self._next_rank)
            self._next_rank -= 1
        self._append_item(key, text, p.enc, p.length, p.prefix)

    # -- search ------------------------------------------------------------

    def _best(self, enc, length: int, prefix) -> tuple[float, int]:
        """Best item scoring above g for one text: (score, item id), or (0.0, -1)."""
        postings = self._postings
        if not prefix or not postings:
            return 0.0, -1
        if postings.total_count(prefix) >= len(self._keys):
            # the candidates would cover the pool (e.g. floor=0): compare with all items once
            return self._brute_one(enc, length)
        k = len(prefix)
        best_score, best_item, _ = self.search_block(
            [enc], [length], prefix, [0] * k, range(k), range(k), range(1, k + 1)
        )
        return float(best_score[0]), int(best_item[0])

    def _brute_one(self, enc, length: int) -> tuple[float, int]:
        """Best item scoring above g for one text, scoring every item (in C)."""
        row = rf_process.cdist(
            [enc], self._encs, scorer=Indel.normalized_distance, score_cutoff=self.bounds.max_distance, dtype=np.float64
        )[0]
        d = np.flatnonzero(row < 1.0)
        if not len(d):
            return 0.0, -1
        g = self.bounds.verify_above
        n = self._lens_np[d]
        keep = n > 0
        d, n = d[keep], n[keep]
        mn = length + n
        lcs = (mn - np.rint(row[d] * mn).astype(np.int64)) // 2  # exact LCS back from dist / (m + n)
        keep = lcs >= min_lcs_array(g, length, n)
        d, n, lcs = d[keep], n[keep], lcs[keep]
        if not len(d):
            return 0.0, -1
        f = f_measure_array(lcs, np.full(len(d), length, dtype=np.int64), n)
        keep = f > g
        if not keep.any():
            return 0.0, -1
        d, f = d[keep], f[keep]
        best = f.max()
        return float(best), int(d[f == best].min())

    # -- public API: texts -------------------------------------------------

    def add(self, text: str, key: str) -> None:
        """Add ``text`` unconditionally (seed tasks, resume replay)."""
        self._commit(self._prep(text), key, text)

    def query(self, text: str) -> Match:
        """Best match of ``text`` in the pool; does not modify the index."""
        p = self._prep(text)
        return self.match_encoded(p.enc, p.length, p.prefix)

    def check_add(self, text: str, key: str) -> Match:
        """Query; add ``text`` under ``key`` when it is not a duplicate."""
        p = self._prep(text)
        match = self.match_encoded(p.enc, p.length, p.prefix)
        if not match.duplicate:
            self._commit(p, key, text)
        return match

    def state(self) -> dict:
        """JSON-serialisable state; :meth:`from_state` rebuilds an identical index."""
        if self._order is None:
            raise RuntimeError("this index has an external element order and no incremental state")
        return {
            "format": STATE_FORMAT,
            "threshold": self.threshold,
            "floor": self.floor,
            "order": {t: list(r) for t, r in self._order.items()},
            "next_rank": self._next_rank,
            "items": [[k, t] for k, t in zip(self._keys, self._texts)],
        }

    @classmethod
    def from_state(cls, d: dict) -> "RougeIndex":
        if d.get("format") != STATE_FORMAT:
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

    # -- public API: encoded texts (external element order) ----------------

    def add_encoded(self, key: str, text: str, enc, length: int, prefix: Sequence[int] | None = None) -> int:
        """Add an encoded text with its prefix ranks (ascending); returns its item id.

        ``prefix=None`` defers its postings (:meth:`post_prefix`): the item can be
        returned by :meth:`key` but is not found by searches until posted.
        """
        if self._order is not None:
            raise RuntimeError("add_encoded needs an index built with external_order=True")
        return self._append_item(key, text, enc, length, prefix)

    def post_prefix(self, item: int, prefix: Sequence[int]) -> None:
        """Post item ``item`` (added with ``prefix=None``) under its prefix elements."""
        if prefix:
            self._postings.add(item, self._encs[item], self._lens[item], prefix)

    def posted_ranks(self) -> Iterable[int]:
        """Element ranks that have postings (only those can give index candidates)."""
        return self._postings.ranks()

    def match_encoded(self, enc, length: int, prefix: Sequence[int]) -> Match:
        """Best match of one encoded text (prefix ranks ascending) in the pool."""
        best_score, best_item = self._best(enc, length, prefix)
        if best_item < 0:
            return NO_MATCH
        return Match(best_score > self.threshold, self._keys[best_item], best_score)

    def search_block(
        self,
        query_encs: Sequence,
        query_lens: Sequence[int],
        group_ranks: Sequence[int],
        entry_query: Sequence[int],
        entry_position: Sequence[int],
        group_start: Sequence[int],
        group_end: Sequence[int],
        within_block: bool = False,
    ):
        """Verify a block of queries grouped by prefix element (``search.verify_groups``).

        Returns (best_score, best_item) arrays per query against the posted items
        (best_item = -1: nothing above ``bounds.verify_above``) and, with
        ``within_block``, a dict q2 -> [(q1, f), ...] of query pairs q1 < q2 with f
        above it.
        """
        return verify_groups(
            self.bounds,
            self._postings,
            self._lens_np,
            query_encs,
            query_lens,
            group_ranks,
            entry_query,
            entry_position,
            group_start,
            group_end,
            within_block,
        )
