"""Counting rules that compose two counts or bound each unit (IFTrain's `counting_composition`, on lines
instead of the paragraphs the `constraints` suite counts)."""
from __future__ import annotations

from ..base import ConstraintType
from ..registry import register_constraint
from ..text import every_sentence, nonblank_lines, words


@register_constraint
class WordsPerLine(ConstraintType):
    id = "train:words_per_line"
    family = "counting"
    params = {"lines": "non-blank lines, 2..10", "words": "words on each line, 3..12"}
    phrasings = (
        "Write exactly {lines} lines, each with exactly {words} words.",
        "Your answer must have {lines} non-empty lines, and every line must contain exactly {words} words.",
        "Format the response as {lines} lines of {words} words each (blank lines do not count).",
    )
    nearest_eval = {
        "format:newline": "one word per line; here a fixed number of words (3 or more) on each line",
        "count:word_count_range": "a range for the whole answer; here an exact grid of lines by words",
        "length_constraints:number_paragraphs": "counts paragraphs split by ***; here lines, and words on each",
    }
    conflicts = frozenset({"train:hyphen_sentences", "train:yaml_keys", "train:toml_tables",
                           "train:markdown_table"})

    def sample(self, rng):
        return {"lines": rng.randint(2, 10), "words": rng.randint(3, 12)}

    def holds(self, text: str, lines: int, words: int) -> bool:
        found = nonblank_lines(text)
        return len(found) == lines and all(len(_words(line)) == words for line in found)


_words = words  # (the parameter `words` shadows the function inside WordsPerLine.holds)


@register_constraint
class SentenceMaxWords(ConstraintType):
    id = "train:sentence_max_words"
    family = "counting"
    params = {"max_words": "the most words any sentence may have, 6..30"}
    phrasings = (
        "Keep every sentence to at most {max_words} words.",
        "No sentence in your answer may be longer than {max_words} words.",
        "Write short sentences: each one {max_words} words or fewer.",
    )
    nearest_eval = {
        "sentence:increment": "each sentence exactly k words longer than the one before; here a cap per sentence",
        "ratio:sentence_words": "three sentences of equal character counts; here any number under a word cap",
        "count:word_count_range": "bounds the whole answer, not each sentence",
    }
    conflicts = frozenset({"train:hyphen_sentences"})

    def sample(self, rng):
        return {"max_words": rng.randint(6, 30)}

    def holds(self, text: str, max_words: int) -> bool:
        return every_sentence(text, lambda s: len(words(s)) <= max_words)
