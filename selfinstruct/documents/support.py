"""Is an answer supported by its source text? A deterministic check: the share of the answer's content
words (not stop words; numbers count) whose stem occurs in the source, and the share of its content
bigrams that occur there too; a number the source does not have fails the answer by itself (a wrong
figure in an otherwise copied sentence is the typical unfaithful answer). Exact, cheap and model-free, so it holds at any model size; it cannot see
a supported-looking sentence that says the opposite of the source (the judge's groundedness rubric is
for that, where a judge is configured)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# English function words (closed classes: articles, pronouns, auxiliaries, prepositions, conjunctions,
# and the fillers answers add): words whose presence says nothing about the source.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either etc few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just let may me
might more most must my myself neither no nor not of off on once only or other ought our ours ourselves
out over own per same shall she should so some such than that the their theirs them themselves then there
these they this those through thus to too under until up upon us very via was we were what when where
whether which while who whom whose why will with within without would yes yet you your yours yourself
yourselves answer text according given based question following one example means mean called use used
""".split())
WORD = re.compile(r"[^\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer  # rule-based: no data to download
    return PorterStemmer()


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return word if word.isdigit() else _stemmer().stem(word)


def content_stems(text: str) -> list[str]:
    return [_stem(w) for w in (m.group(0).lower() for m in WORD.finditer(text)) if w not in STOP_WORDS]


@dataclass(frozen=True)
class Support:
    words: float | None  # share of the answer's content words found in the source (None: it has none)
    bigrams: float | None  # share of its content bigrams found there (None: fewer than two content words)
    missing: tuple[str, ...]  # content words of the answer not in the source (stems), first ones
    numbers: tuple[str, ...] = ()  # numbers of the answer not in the source: each fails the check alone

    def passes(self, min_words: float, min_bigrams: float = 0.0) -> bool:
        return (self.words is not None and self.words >= min_words and not self.numbers
                and (self.bigrams is None or self.bigrams >= min_bigrams))


def support(answer: str, source: str) -> Support:
    words, src = content_stems(answer), content_stems(source)
    if not words:
        return Support(None, None, ())
    vocab = set(src)
    missing = [w for w in words if w not in vocab]
    grams = list(zip(words, words[1:]))
    src_grams = set(zip(src, src[1:]))
    bigrams = sum(g in src_grams for g in grams) / len(grams) if grams else None
    return Support(round(1 - len(missing) / len(words), 4), None if bigrams is None else round(bigrams, 4),
                   tuple(dict.fromkeys(missing))[:10], tuple(dict.fromkeys(w for w in missing if w.isdigit())))
