"""What every constraint check reads a text as: words, sentences, lines, and the loose variants of an
answer. Written once here so that two types never disagree about what a word or a sentence is.

Every pattern here runs in linear time on any input (no nested quantifier can match the same character
two ways), because checks run on whatever a model wrote, a 1 MB answer included. No NLTK, no model
data: the library is in the bottom layers and needs nothing the `eval` extra installs."""
from __future__ import annotations

import re
from typing import Callable, Iterator

# A word: letters or digits, with inner apostrophes or hyphens ("don't", "well-known"). Each repetition
# of the group starts with a separator, so a run of letters has one way to match.
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
# A sentence ends at . ! ? (possibly repeated, possibly closed by a quote or bracket) before whitespace.
# Fixed-width look-behinds: the split is one left-to-right pass.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'”’)\]])\s+")
# IFEval's loose scoring removes "*" (bold, italics, bullets); headings' leading "#" go with them here.
_HEADING = re.compile(r"(?m)^[ \t]*#{1,6}[ \t]*")


def words(text: str) -> list[str]:
    """The words of `text`, in order, as written (punctuation and markup left out)."""
    return _WORD.findall(text)


def first_word(text: str) -> str | None:
    m = _WORD.search(text)
    return m.group(0) if m else None


def first_words(text: str, n: int) -> list[str]:
    """The first `n` words of `text` (fewer when it has fewer), without reading past them."""
    found = []
    for m in _WORD.finditer(text):
        if len(found) == n:
            break
        found.append(m.group(0))
    return found


def last_words(text: str, n: int = 1) -> list[str]:
    """The last `n` words of `text` (fewer when it has fewer), in order, found from the end: the word
    pattern read backwards is the same pattern, so the first matches in the reversed text are the last
    words, and a long answer is not split into all its words to find them."""
    found = []
    for m in _WORD.finditer(text[::-1]):
        found.append(m.group(0)[::-1])
        if len(found) == n:
            break
    return found[::-1]


def last_word(text: str) -> str | None:
    found = last_words(text, 1)
    return found[0] if found else None


def has_longer_word(text: str, max_letters: int) -> bool:
    """Whether a run of more than `max_letters` letters occurs (one regex pass, no list of words)."""
    return re.search(r"[^\W\d_]{%d}" % (max_letters + 1), text) is not None


def sentences(text: str) -> Iterator[str]:
    """The sentences of `text`, lazily (a check stops at the first that breaks its rule): split at . ! ?
    followed by whitespace, and at every line break (a bullet, a table row or a heading is a sentence of
    its own). Pieces without a word are left out.

    A plain splitter (an abbreviation like "e.g. this" splits), the same for every check that counts
    sentences, so the prompt's wording ("every sentence") and the check agree on simple prose."""
    for line in text.splitlines():
        for s in _SENTENCE_BREAK.split(line):
            if _WORD.search(s):
                yield s


def every_sentence(text: str, rule: Callable[[str], bool]) -> bool:
    """`text` has a sentence, and `rule` holds for each of them (read up to the first that breaks it)."""
    seen = False
    for s in sentences(text):
        if not rule(s):
            return False
        seen = True
    return seen


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def same_word(a: str | None, b: str) -> bool:
    """Words compare without case ("Indeed" is "indeed")."""
    return a is not None and a.casefold() == b.casefold()


def strip_markdown(text: str) -> str:
    """`text` without "*" and without the "#" that start headings (IFEval's loose variant removes "*")."""
    return _HEADING.sub("", text.replace("*", ""))


def _trimmed(text: str) -> Iterator[str]:
    yield text
    lines = text.split("\n")
    yield "\n".join(lines[1:]).strip()
    yield "\n".join(lines[:-1]).strip()
    yield "\n".join(lines[1:-1]).strip()


def loose_variants(text: str, markdown: bool = True) -> Iterator[str]:
    """The answers IFEval's loose scoring tries, distinct and non-blank, the text itself first: the text,
    without its first line, without its last line, without both, and each of those with markdown
    stripped. A model that wraps a correct answer in a preamble, a closing remark or a code fence, or
    puts it in bold, passes the loose check and fails the strict one (`markdown=False`: no stripped
    variants, for the formats a parser reads). Lazy: a check that passes on the
    text itself builds no other variant."""
    seen: list[str] = []
    trimmed: list[str] = []
    for t in _trimmed(text):
        trimmed.append(t)
        if t.strip() and t not in seen:
            seen.append(t)
            yield t
    for t in map(strip_markdown, trimmed if markdown else ()):
        if t.strip() and t not in seen:
            seen.append(t)
            yield t
