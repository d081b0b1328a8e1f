"""Posting lists of the ROUGE-L index: prefix element -> items having it in their prefix.

A list starts flat (a :class:`Posting` that also records each item's prefix zone).
Once it holds more than :data:`SPLIT_ABOVE` items it is split by item length ``n``
into ``[core, extra]`` pairs of postings: "core" holds the items having the element
at prefix position ``j < core_len`` (``j <= n - min_lcs(g, n, n)``, all a partner of
length >= n can need), "extra" the rest of the prefix (only partners shorter than n
can need those).  A query then reads only the lengths its length and positional
filters admit (see :mod:`.search`).
"""

from __future__ import annotations

from typing import Iterable, Union

from .score import Bounds

__all__ = ["SPLIT_ABOVE", "Posting", "Postings"]

# a posting list is split by item length and zone once it holds more than this
SPLIT_ABOVE = 256


class Posting:
    """Items having one element in their prefix (of one length and zone once split)."""

    __slots__ = ("encs", "items", "zones")

    def __init__(self) -> None:
        self.encs: list = []  # encodings
        self.items: list[int] = []  # item ids
        self.zones: list[int] = []  # prefix zone per item, 0 core / 1 extra (flat lists only)


# by length n -> [core, extra] (Posting or None)
SplitPosting = dict
PostingEntry = Union[Posting, SplitPosting]


class Postings:
    """Posting lists by element rank.

    ``by_rank``: rank -> :class:`Posting` while flat, else {item length: [core, extra]}
    (read it, never modify it: only :meth:`add` does).  ``item_lens`` is the index's
    list of item lengths (shared, read when a list is split).
    """

    def __init__(self, bounds: Bounds, item_lens: list[int]):
        self.bounds = bounds
        self.item_lens = item_lens
        self.by_rank: dict[int, PostingEntry] = {}
        self._count: dict[int, int] = {}  # element rank -> number of items posted

    def __len__(self) -> int:
        """Number of elements with a posting list."""
        return len(self.by_rank)

    def ranks(self) -> Iterable[int]:
        """Element ranks with a posting list."""
        return self.by_rank.keys()

    def total_count(self, ranks: Iterable[int]) -> int:
        """Number of (element, item) postings over ``ranks``: the candidates a query reads at most."""
        count = self._count
        return sum([count.get(r, 0) for r in ranks])

    def add(self, item: int, enc, length: int, prefix: Iterable[int]) -> None:
        """Post item ``item`` (encoding ``enc``, ``length`` tokens) under each prefix element."""
        # hot loop: the bucket-append lines are the same as in _split, inlined
        # on purpose (a helper call per posting was measured as too slow)
        by_rank = self.by_rank
        count = self._count
        core_len = self.bounds.geometry(length)[0]
        for j, rank in enumerate(prefix):
            count[rank] = count.get(rank, 0) + 1
            zone = 0 if j < core_len else 1
            entry = by_rank.get(rank)
            if entry is None:
                entry = by_rank[rank] = Posting()
            if type(entry) is Posting:
                entry.encs.append(enc)
                entry.items.append(item)
                entry.zones.append(zone)
                if len(entry.items) > SPLIT_ABOVE:
                    by_rank[rank] = self._split(entry)
                continue
            parts = entry.get(length)
            if parts is None:
                parts = entry[length] = [None, None]
            posting = parts[zone]
            if posting is None:
                posting = parts[zone] = Posting()
            posting.encs.append(enc)
            posting.items.append(item)

    def _split(self, flat: Posting) -> SplitPosting:
        by_len: SplitPosting = {}
        lens = self.item_lens
        for enc, item, zone in zip(flat.encs, flat.items, flat.zones):
            n = lens[item]
            parts = by_len.get(n)
            if parts is None:
                parts = by_len[n] = [None, None]
            posting = parts[zone]
            if posting is None:
                posting = parts[zone] = Posting()
            posting.encs.append(enc)
            posting.items.append(item)
        return by_len

    def reencode(self, encs: list) -> None:
        """Replace every stored encoding by ``encs[item]`` (encoding change of all items)."""
        for entry in self.by_rank.values():
            if type(entry) is Posting:
                entry.encs = [encs[d] for d in entry.items]
                continue
            for parts in entry.values():
                for posting in parts:
                    if posting is not None:
                        posting.encs = [encs[d] for d in posting.items]
