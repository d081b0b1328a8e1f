"""Rules about where the answer starts and ends: its first word, its last word, a bigram at both ends
(IFTrain's `first_word_answer`, `last_word_answer`, and its bigram wrapping as a start-and-end rule)."""
from __future__ import annotations

from ..base import ConstraintType
from ..pools import ADJECTIVES, CLOSERS, NOUNS, OPENERS
from ..registry import register_constraint
from ..text import first_word, first_words, last_word, last_words, same_word

# A YAML or TOML document starts with a key the prompt names, not with a chosen word.
_DOCUMENTS = frozenset({"train:yaml_keys", "train:toml_tables"})


@register_constraint
class AnswerFirstWord(ConstraintType):
    id = "train:answer_first_word"
    family = "positions"
    params = {"word": f"an opening word, one of {len(OPENERS)}"}
    phrasings = (
        "Begin your answer with the word '{word}'.",
        "The very first word of your response must be '{word}'.",
        "Open the response with the word \"{word}\"; markup before it is fine, other words are not.",
    )
    nearest_eval = {
        "words:start_verb": "the first word must be a verb; here it is one given word",
        "length_constraints:nth_paragraph_first_word": "the first word of the n-th paragraph together with a "
                                                       "paragraph count; here the first word of the answer alone",
        "words:words_position": "fixes the second and the second-to-last words, not the first",
    }
    conflicts = frozenset({"train:sentence_first_word", "train:bigram_wrap", "train:max_word_length"}) | _DOCUMENTS

    def sample(self, rng):
        return {"word": rng.choice(OPENERS)}

    def holds(self, text: str, word: str) -> bool:
        return same_word(first_word(text), word)


@register_constraint
class AnswerLastWord(ConstraintType):
    id = "train:answer_last_word"
    family = "positions"
    params = {"word": f"a closing word, one of {len(CLOSERS)}"}
    phrasings = (
        "End your answer with the word '{word}'.",
        "The last word of your response must be '{word}' (a final punctuation mark may follow it).",
        "Make sure the final word you write is \"{word}\".",
    )
    nearest_eval = {
        "startend:end_checker": "the answer must end with a fixed multi-word phrase, character for character; "
                                "here one word, compared without case, any punctuation after it",
        "words:words_position": "fixes the second-to-last word, not the last",
    }
    conflicts = frozenset({"train:sentence_last_word", "train:bigram_wrap", "train:max_word_length"}) | _DOCUMENTS

    def sample(self, rng):
        return {"word": rng.choice(CLOSERS)}

    def holds(self, text: str, word: str) -> bool:
        return same_word(last_word(text), word)


@register_constraint
class BigramWrap(ConstraintType):
    id = "train:bigram_wrap"
    family = "positions"
    params = {"bigram": f"two words, an adjective and a noun ({len(ADJECTIVES)} x {len(NOUNS)} pairs)"}
    phrasings = (
        "Wrap your answer in the phrase '{bigram}': make it the first two words and the last two words.",
        "Start your response with the words '{bigram}' and end it with the same two words.",
        "Your answer must both begin and end with the two-word phrase \"{bigram}\".",
    )
    nearest_eval = {
        "startend:quotation": "wraps the answer in quotation marks; here in two given words",
        "startend:end_checker": "a fixed phrase at the end only; here a given bigram at both ends, without case",
        "words:words_position": "one word at two inner positions; here a bigram at both ends",
    }
    conflicts = frozenset({"train:answer_first_word", "train:answer_last_word", "train:sentence_first_word",
                           "train:sentence_last_word", "train:max_word_length"}) | _DOCUMENTS

    def sample(self, rng):
        return {"bigram": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"}

    def holds(self, text: str, bigram: str) -> bool:
        want = bigram.casefold().split()
        n = len(want)
        head = [m.casefold() for m in first_words(text, 2 * n)]
        tail = [m.casefold() for m in last_words(text, n)]
        # 2n words at least: an opening and a closing bigram that are not the same words
        return bool(want) and len(head) == 2 * n and head[:n] == want and tail == want
