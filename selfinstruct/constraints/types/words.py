"""Rules about every word: how it is written (IFTrain's `square_brackets`), what it may contain (no digits,
no contraction) and how long it may be."""
from __future__ import annotations

import re

from ..base import ConstraintType
from ..pools import FORMAT_TYPES
from ..registry import register_constraint
from ..text import has_longer_word, words

# A bracketed word: square brackets with no bracket inside.
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_DIGIT = re.compile(r"\d")
# An apostrophe between two letters: "don't", "it's", "John's".
_CONTRACTION = re.compile(r"[^\W\d_]['’][^\W\d_]")


@register_constraint
class SquareBracketWords(ConstraintType):
    id = "train:square_bracket_words"
    family = "words"
    params = {}
    phrasings = (
        "Enclose every word of your response in square brackets, like [this] [example].",
        "Put each single word you write inside its own pair of square brackets.",
        "Write your answer so that all words appear as [word]: one word per pair of brackets, none outside.",
    )
    nearest_eval = {
        "detectable_content:number_placeholders": "asks for N [placeholder] slots in free text; here every "
                                                  "word is bracketed and each bracket holds one word",
        "format:parentheses": "nests brackets deeply; here brackets never nest",
    }
    # a bracket opens a flow sequence in YAML and a table header in TOML; a bracketed table is not Markdown's
    conflicts = FORMAT_TYPES

    def holds(self, text: str) -> bool:
        inside = _BRACKETED.findall(text)
        return (bool(inside) and all(len(words(w)) == 1 for w in inside)
                and not words(_BRACKETED.sub(" ", text)))


@register_constraint
class NoDigits(ConstraintType):
    id = "train:no_digits"
    family = "words"
    params = {}
    phrasings = (
        "Do not use any digits; write every number out in words.",
        "Your answer must not contain a single numeral (0-9): spell numbers as words instead.",
        "Avoid digits entirely. If you need a number, write it in letters, such as 'twenty-one'.",
    )
    nearest_eval = {
        "count:numbers": "asks for exactly N numbers; here no number is written in digits, and any number of "
                         "spelled-out numbers is fine",
    }

    def holds(self, text: str) -> bool:
        return not _DIGIT.search(text)


@register_constraint
class MaxWordLength(ConstraintType):
    id = "train:max_word_length"
    family = "words"
    params = {"max_letters": "the longest word allowed, in letters, 5..14"}
    phrasings = (
        "Use no word longer than {max_letters} letters.",
        "Every word in your response must have at most {max_letters} letters; choose shorter synonyms.",
        "Keep all of your words short: none may exceed {max_letters} letters.",
    )
    nearest_eval = {
        "words:prime_lengths": "every word's length must be a prime number; here only an upper bound",
        "words:consonants": "every word needs a consonant cluster; nothing about length",
    }
    # the given words and keys of these types may be longer than the bound
    conflicts = frozenset({"train:sentence_first_word", "train:sentence_last_word", "train:answer_first_word",
                           "train:answer_last_word", "train:bigram_wrap", "train:yaml_keys",
                           "train:toml_tables"})

    def sample(self, rng):
        return {"max_letters": rng.randint(5, 14)}

    def holds(self, text: str, max_letters: int) -> bool:
        return not has_longer_word(text, max_letters)


@register_constraint
class NoContractions(ConstraintType):
    id = "train:no_contractions"
    family = "words"
    params = {}
    phrasings = (
        "Do not use contractions or possessive apostrophes: write 'do not', 'it is', 'the book of Anna'.",
        "No apostrophe may appear inside a word in your answer (no \"don't\", \"it's\" or \"Anna's\").",
        "Write every contraction out in full and avoid the possessive 's.",
    )
    nearest_eval = {
        "punctuation:no_comma": "bans a mark everywhere; here an apostrophe only inside a word",
        "keywords:forbidden_words": "bans given words; here a way of writing any word",
    }

    def holds(self, text: str) -> bool:
        return not _CONTRACTION.search(text)
