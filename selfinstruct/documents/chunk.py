"""Cutting a document into chunks: at headings and paragraphs, each under a token budget counted with
the model's tokenizer (`count`), consecutive chunks sharing at most `overlap` tokens.

The units are the document's blocks (a paragraph longer than the budget is cut at sentences, a
sentence longer than it at words); each unit owns the text up to the next one, so the chunks' spans
tile the text: the first starts at 0, the last ends at its length, and a chunk starts where the one
before it ends or, with an overlap, on a unit inside it. A heading starts a new chunk (after body
text; with `min_tokens`, only once the chunk holds that many tokens, so small sections are merged), a
chunk never ends with a heading whose section it leaves out, and `headings` is the path of headings in
force at the chunk's first body text."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .read import Block, Document

Count = Callable[[str], int]


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    headings: tuple[str, ...]
    tokens: int


def _pieces(text: str, start: int, end: int, pattern: str) -> list[tuple[int, int]]:
    out, pos = [], start
    for m in re.finditer(pattern, text[start:end]):
        if start + m.start() > pos:
            out.append((pos, start + m.start()))
            pos = start + m.start()
    out.append((pos, end))
    return [p for p in out if text[p[0]:p[1]].strip()]


def _fit(text: str, start: int, end: int, count: Count, budget: int, level: int = 0) -> list[tuple[int, int]]:
    """[start, end) as spans under the budget: sentences, then words, then characters."""
    if count(text[start:end]) <= budget or level == 3:
        return [(start, end)]
    pattern = (r"(?<=[.!?])\s+", r"\s+", r"(?<=.)")[level]  # a cut falls before the next piece's whitespace
    out: list[tuple[int, int]] = []
    for a, b in _pieces(text, start, end, pattern) or [(start, end)]:
        if out and count(text[out[-1][0]:b]) <= budget:
            out[-1] = (out[-1][0], b)
        else:
            out += _fit(text, a, b, count, budget, level + 1)
    return out


def chunk_blocks(text: str, blocks: list[Block], count: Count, max_tokens: int, overlap: int = 0,
                 min_tokens: int = 0) -> list[Chunk]:
    if max_tokens < 1 or overlap < 0 or overlap >= max_tokens:
        raise ValueError("need 0 <= overlap < max_tokens")
    units: list[Block] = []
    for b in blocks:
        spans = [(b.start, b.end)] if b.heading else _fit(text, b.start, b.end, count, max_tokens)
        units += [Block(s, e, b.heading) for s, e in spans]
    if not units:
        return []
    bounds: list[int] = []
    cost: list[int] = []

    def layout() -> None:  # each unit owns the text up to the next unit (the first one from 0): chunks tile it
        bounds[:] = [0] + [u.start for u in units[1:]] + [len(text)]
        cost[:] = [count(text[bounds[k]:bounds[k + 1]]) for k in range(len(units))]

    def tokens(i: int, j: int) -> int:  # exact count of units i..j-1
        return count(text[bounds[i]:bounds[j]])

    layout()
    chunks: list[Chunk] = []
    stack: list[tuple[int, str]] = []  # the headings in force at unit i
    i = 0
    while i < len(units):
        j = i + 1  # units i..j-1 are in the chunk
        body = not units[i].heading
        est = cost[i]
        # a heading starts a new chunk once this one has body text and min_tokens (small sections merge)
        while (j < len(units) and not (units[j].heading and body and est >= min_tokens)
               and est + cost[j] <= max_tokens):
            est += cost[j]
            body = body or not units[j].heading
            j += 1
        while j - i > 1 and tokens(i, j) > max_tokens:  # the sum of parts is an estimate: the whole decides
            j -= 1
        while j < len(units) and j - i > 1 and units[j - 1].heading and any(not u.heading for u in units[i:j - 1]):
            j -= 1  # a heading at the end goes with its section, in the next chunk
        if j < len(units) and all(u.heading for u in units[i:j]) and not units[j].heading:
            # headings alone make no chunk: the body after them is cut to the room they leave
            room = max_tokens - tokens(i, j)
            pieces = _fit(text, units[j].start, units[j].end, count, room) if room > 0 else []
            if len(pieces) > 1:
                rest = _fit(text, pieces[1][0], units[j].end, count, max_tokens)
                units[j:j + 1] = [Block(s, e) for s, e in [pieces[0]] + rest]
                layout()
                j += 1
        first_body = next((k for k in range(i, j) if not units[k].heading), j)
        head = _push(text, units, stack, i, first_body)  # the path at the chunk's first body text
        chunks.append(Chunk(bounds[i], bounds[j], tuple(h for _, h in head), tokens(i, j)))
        if j >= len(units):
            break
        nxt = j
        if overlap and not units[j].heading:  # a new section starts fresh; inside one, repeat the tail
            # (only as much as leaves room for the next unit, or the next chunk would end where this one did)
            while (nxt - 1 > i and not units[nxt - 1].heading and tokens(nxt - 1, j) <= overlap
                   and tokens(nxt - 1, j) + cost[j] <= max_tokens):
                nxt -= 1
        stack = _push(text, units, stack, i, nxt)
        i = nxt
    return chunks


def _push(text: str, units: list[Block], stack: list[tuple[int, str]], i: int, k: int) -> list[tuple[int, str]]:
    """The headings in force at unit k, from those in force at unit i."""
    for u in units[i:k]:
        if u.heading:
            stack = [h for h in stack if h[0] < u.heading] + [(u.heading, text[u.start:u.end].strip().lstrip("#").strip())]
    return stack


def chunk_document(doc: Document, count: Count, max_tokens: int, overlap: int = 0, min_tokens: int = 0) -> list[Chunk]:
    return chunk_blocks(doc.text, doc.blocks, count, max_tokens, overlap, min_tokens)
