"""The verifiable-instruction checkers of PyPI `if-verifiable`, made to run offline and quietly.

if-verifiable carries the IFBench and IFEval checkers (deterministic Python, Apache-2.0). Three things
in it need care here, and this module is the one place that handles them:

* Its IFBench utilities call `nltk.download` at import, which on a machine without network prints
  errors (and `-q` must stay quiet): the import runs with `nltk.download` replaced by a no-op.
* A few checkers need NLTK data that cannot be installed offline (punkt / punkt_tab sentence models,
  the stopwords corpus, the averaged-perceptron POS tagger). `_patch_offline` swaps the utility
  functions that load that data for equivalents with no data to download:
    - word tokens: NLTK's own data-free `NLTKWordTokenizer` (what `nltk.word_tokenize` runs per
      sentence) over sentences from `nupunkt` (PyPI, MIT; a Punkt model shipped in the wheel);
    - sentence count (IFEval `length_constraints:number_sentences`): `nupunkt` sentences;
    - stopwords (IFBench `ratio:stop_words`): `ENGLISH_STOPWORDS` below.
  The patches apply whether or not NLTK data is installed, so a score does not depend on the machine
  it was computed on (it may differ marginally from the reference implementation's punkt splits).
* `words:start_verb` needs a POS tagger; nothing on PyPI that we trust ships one, so it is scored only
  where NLTK's tagger data is installed and otherwise reported as skipped (`unavailable_reason`).

langdetect (used by the IFEval casing/language checkers) is randomised unless seeded: it is seeded here.

Three IFBench checkers of if-verifiable 0.1.2 (the same code as allenai/IFBench's) give wrong verdicts,
and `load_registry("ifbench")` serves corrected subclasses of them instead (`CORRECTED`; the library's
own registry is left untouched, and `load_registry(name, corrected=False)` returns it):
* `format:line_indent` ("Create stairs by incrementally indenting each new line"): the original drops
  blank lines with `list.remove` while iterating over the list, which skips the second of two blank
  lines in a row; the blank line left over has indent 0 and breaks the stairs, so "a\n b\n\n  c"
  passes and "a\n b\n\n\n  c" fails. Corrected: every blank line is ignored, each non-blank line
  must be indented by more spaces than the one before, and it takes two lines to make a stair (a
  one-line answer passed the original vacuously).
* `ratio:sentence_type` ("Maintain a 2:1 ratio of declarative to interrogative sentences"): the
  original tests `declarative == 2 * interrogative`, which 0 == 2 * 0 satisfies, so an answer with no
  question and no sentence ending in "." ("Wow!", a bullet list without full stops) passes. Corrected:
  at least one question, and exactly twice as many declarative sentences.
* `repeat:repeat_span` ("Copy the span of words that lies between (and including) index N and M, the
  indices are word indices, split by whitespace!"): the original draws the start index at random
  whenever it is falsy, so the row with `n_start` 0 got a random start (a score that changes from run
  to run), and it compares with `words[n_start:n_end]`, leaving out word M, which the prompt includes.
  Corrected: the row's indices, never a random one (missing indices are rejected: the instruction is
  skipped as bad kwargs), and the span `words[n_start:n_end + 1]` of `prompt_to_repeat` split by
  whitespace; the comparison stays the original's (the answer's whitespace-split words, lowercased).
"""
from __future__ import annotations

import contextlib
import functools
from typing import Mapping

REGISTRIES = ("ifbench", "ifeval")

# NLTK's English stopword list (nltk_data `corpora/stopwords/english`, derived from the Snowball
# stopword list, BSD-3-Clause), written out here. Only the entries without an apostrophe: the checker
# counts `\w+` tokens, which never contain one, so "don't", "i'm", ... could never match anyway.
ENGLISH_STOPWORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
hers herself it its itself they them their theirs themselves what which who whom this that these
those am is are was were be been being have has had having do does did doing a an the and but if or
because as until while of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very s
t can will just don should now d ll m o re ve y ain aren couldn didn doesn hadn hasn haven isn ma
mightn mustn needn shan shouldn wasn weren won wouldn
""".split())

# Checkers whose NLTK data has no offline substitute: instruction id -> NLTK resources it loads.
# (`nltk.word_tokenize` inside if-verifiable's instructions module is the real one, hence punkt_tab.)
_NLTK_ONLY = {
    "ifbench": {
        "words:start_verb": ("taggers/averaged_perceptron_tagger_eng/", "tokenizers/punkt_tab/english/"),
    },
    "ifeval": {},
}


@contextlib.contextmanager
def _nltk_downloads_disabled():
    """if-verifiable downloads NLTK data at import; offline that prints errors and waits on the network."""
    import nltk

    saved = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        yield
    finally:
        nltk.download = saved


def sent_tokenize(text: str) -> list[str]:
    """Sentences by nupunkt's bundled Punkt model (no NLTK data)."""
    import nupunkt

    return [s for s in nupunkt.sent_tokenize(text) if s.strip()]


@functools.lru_cache(maxsize=1)
def _word_tokenizer():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str, language: str = "english", preserve_line: bool = False) -> list[str]:
    """`nltk.word_tokenize` with nupunkt sentences in place of NLTK's punkt_tab data."""
    sentences = [text] if preserve_line else sent_tokenize(text)
    tok = _word_tokenizer()
    return [token for sentence in sentences for token in tok.tokenize(sentence)]


def count_sentences(text: str) -> int:
    return len(sent_tokenize(text))


def count_stopwords(text: str) -> int:
    """IFBench's `count_stopwords` (same `\\w+` tokens, same case folding) with the list above."""
    import re

    return sum(1 for t in re.findall(r"\w+", text) if t.lower() in ENGLISH_STOPWORDS)


class _OfflineNltk:
    """Stands in for the name `nltk` inside if-verifiable's util modules: the checkers call
    `instructions_util.nltk.word_tokenize(...)`; everything else is the real nltk."""

    word_tokenize = staticmethod(word_tokenize)

    def __getattr__(self, name):
        import nltk

        return getattr(nltk, name)


def _patch_offline(ifbench_util, ifeval_util) -> None:
    """The one place where if-verifiable's NLTK-data functions are replaced (see the module doc)."""
    shim = _OfflineNltk()
    ifbench_util.nltk = shim
    ifbench_util.count_stopwords = count_stopwords
    ifeval_util.nltk = shim
    ifeval_util.count_sentences = count_sentences


# --- corrected IFBench checkers (see the module doc) -------------------------------------------------

# Instruction id -> what the correction changes, per registry.
CORRECTED = {
    "ifbench": {
        "format:line_indent": "blank lines ignored whatever their number; two lines at least",
        "ratio:sentence_type": "at least one question, and twice as many declarative sentences",
        "repeat:repeat_span": "the row's indices, never random; word n_end included, as the prompt says",
    },
    "ifeval": {},
}


def staircase_indented(text: str) -> bool:
    """`format:line_indent`: blank lines aside, each line is indented by more leading spaces than the
    line before it, and there are at least two lines (one line makes no stairs)."""
    indents = [len(line) - len(line.lstrip(" ")) for line in text.split("\n") if line.strip()]
    return len(indents) >= 2 and all(b > a for a, b in zip(indents, indents[1:]))


def declarative_interrogative_2_to_1(sentences: list[str]) -> bool:
    """`ratio:sentence_type`: at least one question ("?") and exactly twice as many declarative
    sentences ("."); other sentences (exclamations) do not count either way."""
    declarative = sum(1 for s in sentences if s.endswith("."))
    interrogative = sum(1 for s in sentences if s.endswith("?"))
    return interrogative >= 1 and declarative == 2 * interrogative


def word_span(text: str, n_start: int, n_end: int) -> list[str]:
    """`repeat:repeat_span`: the words of `text` split by whitespace from index n_start to index n_end,
    both included (the prompt: "between (and including) index N and M ... word indices")."""
    return text.split()[n_start:n_end + 1]


def _index(value, name: str) -> int:
    if value is None or isinstance(value, bool):
        raise ValueError(f"{name} must be set (an index is never drawn at random here)")
    return int(value)


def _corrected_ifbench(instructions, util) -> dict[str, type]:
    """Subclasses of if-verifiable's three faulty IFBench checkers, by instruction id."""

    class LineIndent(instructions.IndentStairsChecker):
        __doc__ = staircase_indented.__doc__

        def check_following(self, value):
            return staircase_indented(value)

    class SentenceTypeRatio(instructions.SentTypeRatioChecker):
        __doc__ = declarative_interrogative_2_to_1.__doc__

        def check_following(self, value):
            return declarative_interrogative_2_to_1(util.split_into_sentences(value))

    class RepeatSpan(instructions.RepeatSpanChecker):
        __doc__ = word_span.__doc__

        def build_description(self, prompt_to_repeat=None, n_start=None, n_end=None):
            if not prompt_to_repeat:
                raise ValueError("prompt_to_repeat must be set.")
            start, end = _index(n_start, "n_start"), _index(n_end, "n_end")
            n_words = len(prompt_to_repeat.split())
            if not 0 <= start <= end < n_words:
                raise ValueError(f"word span {start}..{end} is not within the {n_words} words of prompt_to_repeat")
            self._prompt_to_repeat, self._n_start, self._n_end = prompt_to_repeat, start, end
            self._description_pattern = ("Copy the span of words that lies between (and including) index "
                                         "{n_start} and {n_end}, the indices are word indices, split by whitespace!")
            return self._description_pattern.format(n_start=start, n_end=end)

        def check_following(self, value):
            span = word_span(self._prompt_to_repeat, self._n_start, self._n_end)
            return value.strip().lower().split() == [w.lower() for w in span]

    classes = {"format:line_indent": LineIndent, "ratio:sentence_type": SentenceTypeRatio,
               "repeat:repeat_span": RepeatSpan}
    assert set(classes) == set(CORRECTED["ifbench"])
    for cls in classes.values():
        cls.__qualname__ = cls.__name__ = f"Corrected{cls.__base__.__name__}"
    return classes


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, dict[str, Mapping[str, type]]]:
    import langdetect

    # langdetect samples at random unless seeded: the same answer must always get the same score.
    langdetect.DetectorFactory.seed = 0
    with _nltk_downloads_disabled():
        from if_verifiable.ifbench import instructions as ifbench_instructions
        from if_verifiable.ifbench import instructions_registry as ifbench_registry
        from if_verifiable.ifbench import instructions_util as ifbench_util
        from if_verifiable.ifeval import instructions_registry as ifeval_registry
        from if_verifiable.ifeval import instructions_util as ifeval_util
    _patch_offline(ifbench_util, ifeval_util)
    original = {"ifbench": ifbench_registry.INSTRUCTION_DICT, "ifeval": ifeval_registry.INSTRUCTION_DICT}
    corrected = {"ifbench": {**original["ifbench"], **_corrected_ifbench(ifbench_instructions, ifbench_util)},
                 "ifeval": original["ifeval"]}
    return {"original": original, "corrected": corrected}


def load_registry(name: str, corrected: bool = True) -> Mapping[str, type]:
    """Instruction id -> checker class for "ifbench" or "ifeval" (patched for offline use), with the
    corrected checkers of `CORRECTED`; `corrected=False`: if-verifiable's own classes, bugs included
    (to measure what the corrections change)."""
    if name not in REGISTRIES:
        raise ValueError(f"unknown checker registry {name!r} (expected one of {', '.join(REGISTRIES)})")
    return _load()["corrected" if corrected else "original"][name]


def ifeval_conflicts() -> dict[str, set[str]]:
    """IFEval's table of instruction ids that must not share a prompt, made symmetric (a copy)."""
    _load()
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_CONFLICTS

    out = {k: set(v) | {k} for k, v in INSTRUCTION_CONFLICTS.items()}
    for k, v in list(out.items()):
        for other in v:
            out.setdefault(other, {other}).add(k)
    return out


@functools.lru_cache(maxsize=None)
def _nltk_resource_missing(resource: str) -> bool:
    import nltk

    try:
        nltk.data.find(resource)
        return False
    except LookupError:
        return True


def unavailable_reason(registry: str, instruction_id: str) -> str | None:
    """Why a known checker cannot run on this machine (missing NLTK data), or None when it can.
    Response-independent, so base and tuned models are scored on the same instructions."""
    missing = [r for r in _NLTK_ONLY.get(registry, {}).get(instruction_id, ()) if _nltk_resource_missing(r)]
    return f"needs NLTK data not installed: {', '.join(r.rstrip('/') for r in missing)}" if missing else None
