"""Rules about every sentence: how sentences are joined, and the word each one starts or ends with
(IFTrain's `sentence_hyphens`, `first_word_sent`, `last_word_sent`). A sentence is `text.sentences`."""
from __future__ import annotations

import re

from ..base import ConstraintType
from ..pools import CLOSERS, FORMAT_TYPES, OPENERS
from ..registry import register_constraint
from ..text import every_sentence, first_word, last_word, same_word

# Two sentences joined: an end mark (maybe closed by a quote or bracket) right before a hyphen.
_JUNCTION = re.compile(r"[.!?…][\"'”’)\]]?-")
# What hyphen-joined sentences must not have: a sentence end followed by whitespace, or a spaced hyphen.
_SPACED = re.compile(r"[.!?…][\"'”’)\]]?\s|\s-|-\s")


@register_constraint
class HyphenSentences(ConstraintType):
    id = "train:hyphen_sentences"
    family = "sentences"
    params = {}
    phrasings = (
        "Connect all of your sentences with hyphens, with no spaces between them (like this.-And this.).",
        "Join every sentence to the next one with a hyphen and no spaces: end a sentence, write '-', then "
        "start the next one right away.",
        "Do not separate sentences with spaces or line breaks; link consecutive sentences with a single "
        "hyphen instead, for example 'It rains.-We stay in.'",
    )
    nearest_eval = {
        "format:no_whitespace": "bans every whitespace; here the words inside a sentence keep their spaces and "
                                "only the joints between sentences become hyphens",
        "words:last_first": "chains sentences by repeating a word; here they are chained by punctuation",
    }
    # the sentence rules split sentences at whitespace, which this type removes from between them
    conflicts = frozenset({"train:sentence_first_word", "train:sentence_last_word", "train:sentence_max_words",
                           "train:words_per_line"}) | FORMAT_TYPES

    def holds(self, text: str) -> bool:
        t = text.strip()
        return bool(_JUNCTION.search(t)) and not _SPACED.search(t)


def _sentence_word_conflicts(position: str) -> frozenset[str]:
    return frozenset({"train:hyphen_sentences", f"train:answer_{position}_word", "train:bigram_wrap",
                      "train:max_word_length"}) | FORMAT_TYPES


@register_constraint
class SentenceFirstWord(ConstraintType):
    id = "train:sentence_first_word"
    family = "sentences"
    params = {"word": f"an opening word, one of {len(OPENERS)} (e.g. 'indeed', 'remember')"}
    phrasings = (
        "Start every sentence of your answer with the word '{word}'.",
        "Each sentence you write must begin with '{word}'.",
        "Make '{word}' the first word of each of your sentences (any capitalization).",
        "Every sentence in the response has to open with the word \"{word}\".",
    )
    nearest_eval = {
        "custom:sentence_alphabet": "first words follow the alphabet, one letter per sentence; here one given "
                                    "word opens every sentence",
        "length_constraints:nth_paragraph_first_word": "the first word of one paragraph, with a paragraph "
                                                       "count; here every sentence, and no count",
        "words:last_first": "each sentence opens with the previous one's last word, not a fixed word",
    }
    conflicts = _sentence_word_conflicts("first")

    def sample(self, rng):
        return {"word": rng.choice(OPENERS)}

    def holds(self, text: str, word: str) -> bool:
        return every_sentence(text, lambda s: same_word(first_word(s), word))


@register_constraint
class SentenceLastWord(ConstraintType):
    id = "train:sentence_last_word"
    family = "sentences"
    params = {"word": f"a closing word, one of {len(CLOSERS)} (e.g. 'today', 'together')"}
    phrasings = (
        "End every sentence with the word '{word}' (punctuation may follow it).",
        "The last word of each sentence you write must be '{word}'.",
        "Finish each of your sentences with the word \"{word}\", right before its final punctuation mark.",
    )
    nearest_eval = {
        "words:last_first": "a sentence's last word must open the next sentence; here one given word closes "
                            "every sentence",
        "words:paragraph_last_first": "each paragraph ends with its own first word; here every sentence ends "
                                      "with one given word",
    }
    conflicts = _sentence_word_conflicts("last")

    def sample(self, rng):
        return {"word": rng.choice(CLOSERS)}

    def holds(self, text: str, word: str) -> bool:
        return every_sentence(text, lambda s: same_word(last_word(s), word))
