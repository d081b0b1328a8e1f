"""Diversity of instructions (Self-Instruct Fig. 2): root verb and direct object of each instruction.

No constituency parser with a model installs from PyPI here, so :func:`verb_object` is a transparent
rule-based heuristic; :data:`DIVERSITY_METHOD` describes it, and the HTML report prints that text."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

DIVERSITY_METHOD = (
    "Root verb and direct object come from a rule-based heuristic (no parser with a model installs from "
    "PyPI here; the paper used the Berkeley Neural Parser). The instruction is split into sentences and "
    "each is examined in order. A leading introductory phrase that starts with a preposition or participle "
    "('Given ...', 'Using ...', 'In ...', 'For ...', 'If ...') is dropped up to its first comma outside "
    "parentheses, then adverbs such as 'please', 'now', 'briefly' are skipped. A sentence ending in '?' "
    "that starts with a wh-word or an auxiliary ('What', 'How', 'Is', 'Do', ...) is a question. Otherwise, "
    "if its first word is in a lexicon of about 300 imperative task verbs (write, give, explain, classify, "
    "...), that word is the root verb; a particle after it ('come up with', 'pull out') is skipped. The "
    "direct object is the head of the noun phrase after the verb: indirect-object pronouns ('me', 'them', "
    "also 'to me'), determiners, quantifiers, numbers and 'only' are skipped; the phrase ends at "
    "punctuation, a preposition, conjunction, relative or wh-word, pronoun or determiner, a participle "
    "(-ing/-ed) or a closing adverb (-ly), except that coordinated common adjectives are crossed ('a "
    "short, funny dialogue'); its last word is the head ('Write a short poem about the sea' -> write / "
    "poem; 'Give me three tips for ...' -> give / tips; 'Generate a list of ...' -> generate / list). "
    "No object is recorded for a pronoun ('Make it shorter'), a clause ('Describe how ...'), a bare "
    "gerund ('Keep going'), 'yes'/'true' or a bare 'following'. The first sentence with a verb decides; "
    "an instruction without one is a 'question' if one of its sentences is, else 'other' (a statement). "
    "Words are lower-cased and not lemmatized ('tip' and 'tips' are different objects)."
)

_VERBS = set("""
accept act add address adjust advise allocate alphabetize analyse analyze annotate answer apologize
apply approve argue arrange ask assemble assess assign assist balance book brainstorm break build
calculate calibrate capitalize caption categorise categorize change characterize check choose cite
boil clarify classify clean code collect combine come comment compare compile complete compose compute
condense confirm congratulate connect consider construct contrast continue convert convince copy
correct count craft create critique cut debate debug decide decipher decode decrypt deduce defend
define delete demonstrate depict derive describe design detail detect determine develop devise
diagnose dictate discuss distinguish divide do double-check draft edit elaborate eliminate
emphasize encode encrypt enumerate estimate evaluate examine expand explain explore express extend
extract figure fill filter find finish fix flag follow forecast form format formulate frame
generate get give grade greet group guess help highlight hypothesize identify illustrate imagine
implement improve include indicate infer inform insert instruct interpret introduce invent invite
itemize judge justify keep label let list locate look make mark match measure mention merge modify
multiply name narrate negate normalize note number offer optimize order organise organize outline
paraphrase parse perform persuade pick pitch place plan play point polish predict prepare present
pretend prioritize produce pronounce proofread propose prove provide pull punctuate put quote rank
rate read reason recall recite recognize recommend recount redact reduce refactor refine reformat
reframe reformulate rename render reorder reorganize repeat rephrase replace reply report
represent request resolve respond restate restructure retell retrieve return reverse review revise
rewrite round route rule say schedule score search select sell separate sequence set share
shorten show simplify simulate solve sort specify spell split start state structure substitute
subtract suggest sum summarise summarize supply swap tabulate tag take talk teach tell test thank
think tokenize total trace track transcribe transform translate transliterate trim turn type
underline unscramble update use validate verify vote walk warn weigh welcome wish word write
""".split())

_QUESTION_WORDS = set("""
what which who whom whose why how when where whether is are was were am do does did can could would
should will shall may might must have has had isn't aren't doesn't don't didn't can't won't
""".split())

_INTRO = set("""
given using in on for from according based if when whenever before after with without as while once
considering assuming starting ignoring to by under during suppose supposing
""".split())

_ADVERBS = set("""
please kindly now also then just briefly quickly simply carefully politely first next finally
again additionally lastly concisely clearly roughly further instead
""".split())

_PARTICLES = {"up", "out", "down", "off", "over", "back", "away", "through", "together"}

_DETERMINERS = set("""
a an the this that these those some any each every all both either neither no my your his her its
our their another other such several many few more most much various certain
""".split())

_NUMBER_WORDS = set("""
one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty fifty hundred
single couple pair dozen
""".split())

_INDIRECT = {"me", "us", "him", "her", "them", "you"}

_LIMITERS = {"only", "just", "exactly", "roughly", "approximately"}

_ADJECTIVES = set("""
short long brief simple new old good bad big small funny quick clear formal informal casual friendly
polite firm warm kind creative catchy original detailed concise persuasive professional fun simple
easy hard healthy cheap fast slow serious silly happy sad unique interesting
""".split())

_STOPS = set("""
about above across after against along among around as at before behind below beneath beside
between beyond by during for from in inside into like near of off on onto out outside over per
since than through throughout to toward towards under until up upon via with within without and
or but nor so yet that which who whom whose where when why how what whether if because while
using based given is are was were be been being will would should can could may might must
except including excluding besides regarding concerning despite amongst beside unlike versus vs till
plus minus unless although though whereas whenever wherever whichever whatever even only also just
not very too please then now here there i you we they he she it down away back together apart aside
""".split()) | _DETERMINERS

_NO_OBJECT = {"it", "them", "this", "that", "these", "those", "something", "anything", "everything",
              "nothing", "one", "ones", "yes", "true", "false", "following", "given", "above", "below", "previous", "next",
              "me", "us", "him", "her", "you", "yourself", "itself", "themselves", "myself"}

_PRONOUNS = {"it", "something", "anything", "everything", "nothing", "someone", "anyone", "everyone",
             "yourself", "itself", "themselves", "myself", "ourselves", "i", "we", "they", "she", "he"}

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,:/]\d+)*|[^\sA-Za-z\d]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class VerbObject(NamedTuple):
    kind: str  # "verb_object" | "verb" | "question" | "other"
    verb: str | None = None
    obj: str | None = None


def _words(sentence: str) -> list[str]:
    toks = []
    for t in _TOKEN.findall(sentence):
        t = t.lower()
        if t.endswith("'s"):
            t = t[:-2]
        toks.append(t)
    return toks


def _strip_intro(toks: list[str]) -> list[str]:
    """Drop a leading introductory phrase ("Given X, ...", "In Python, ...") and adverbs."""
    for _ in range(3):
        if toks and (toks[0] in _INTRO or toks[0].endswith("ly") and len(toks) > 1 and toks[1] == "speaking"):
            depth, cut = 0, None
            for j, t in enumerate(toks):  # the first comma outside parentheses
                depth += (t in "([{") - (t in ")]}")
                if t == "," and depth <= 0:
                    cut = j
                    break
            if cut is not None:
                toks = toks[cut + 1:]
                continue
        break
    while toks and (toks[0] in _ADVERBS or toks[0] in {",", "-", ":", "*", "\"", "'"}):
        toks = toks[1:]
    return toks


def _object(toks: list[str]) -> str | None:
    i = 0
    while i < len(toks) and toks[i] in _INDIRECT:
        i += 1
    while i < len(toks) and (toks[i] in _DETERMINERS or toks[i] in _NUMBER_WORDS or toks[i][0].isdigit()
                             or toks[i] in _LIMITERS
                             or (toks[i] in {"about", "around"} and i + 1 < len(toks)  # "about 50 words"
                                 and (toks[i + 1][0].isdigit() or toks[i + 1] in _NUMBER_WORDS))
                             or (toks[i] == "of" and i > 0 and toks[i - 1] in _DETERMINERS | _NUMBER_WORDS)):
        i += 1
    if i < len(toks) and toks[i] in _PRONOUNS:  # "Make it shorter"
        return None
    bare = i == 0  # no determiner, number or pronoun before the phrase
    span: list[str] = []
    while i < len(toks) and len(span) < 4:
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ","
        if span and span[-1] in _ADJECTIVES and t in {",", "and", "but", "or"} and nxt[0].isalpha() \
                and nxt not in _STOPS:
            i += 1  # "a short, funny dialogue", "a polite but firm complaint"
            continue
        if not t[0].isalpha() or t in _STOPS:
            break
        if span and len(t) > 4 and (t.endswith("ing") or t.endswith("ed")):
            break  # a participle after the noun: "a poem describing ..."
        if span and len(t) > 4 and t.endswith("ly") and "-" not in t and (not nxt[0].isalpha() or nxt in _STOPS):
            break  # an adverb closing the phrase: "... the instructions carefully, so ..."
        span.append(t)
        i += 1
    if not span:
        return None
    head = span[-1]
    if head in _NO_OBJECT or head in _PRONOUNS or len(head) < 2:
        return None
    if bare and len(span) == 1 and head.endswith("ing"):  # a gerund complement: "Keep going"
        return None
    return head


def _is_question(sentence: str, toks: list[str]) -> bool:
    return (sentence.rstrip().endswith("?") or bool(toks) and toks[0] in _QUESTION_WORDS
            or len(toks) > 1 and toks[0] in _INTRO and toks[1] in _QUESTION_WORDS)  # "In which ..."


def verb_object(instruction: str) -> VerbObject:
    """Root verb and direct object of an instruction, by the heuristic of :data:`DIVERSITY_METHOD`."""
    sentences = [s for s in _SENTENCE_END.split(instruction.strip()) if s.strip()]
    question = False
    for s in sentences:
        toks = _strip_intro(_words(s))
        if not toks:
            continue
        if s.rstrip().endswith("?") and toks[0] in _QUESTION_WORDS:  # "Do you need ...?"
            question = True
            continue
        if toks[0] in _VERBS and not (len(toks) > 1 and toks[1] in {"is", "are", "was", "were", "'s"}):
            verb, rest = toks[0], toks[1:]
            if len(rest) > 1 and rest[0] in {"to", "for"} and rest[1] in _INDIRECT:  # "Explain to me X"
                rest = rest[2:]
            if rest and rest[0] in _PARTICLES:
                rest = rest[1:]
                if rest and rest[0] == "with":  # "come up with"
                    rest = rest[1:]
            obj = _object(rest)
            return VerbObject("verb_object", verb, obj) if obj else VerbObject("verb", verb, None)
        if _is_question(s, toks):
            question = True
    return VerbObject("question" if question else "other")


KINDS = ("verb_object", "verb", "question", "other")


@dataclass
class TopVerb:
    """One verb of the Fig. 2 sunburst: instructions with it and a direct object, and its top objects."""
    verb: str
    count: int
    objects: list[tuple[str, int]]


@dataclass
class Diversity:
    total: int  # instructions examined
    kinds: dict[str, int]  # VerbObject.kind -> instructions, every kind of KINDS present
    distinct_verbs: int
    distinct_pairs: int  # distinct (verb, object)
    verbs: list[tuple[str, int]] = field(default_factory=list)  # every root verb, most frequent first
    top: list[TopVerb] = field(default_factory=list)


def diversity(instructions: Iterable[str], top_verbs: int = 20, top_objects: int = 4) -> Diversity:
    kinds: Counter[str] = Counter()
    verbs: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for text in instructions:
        vo = verb_object(text)
        kinds[vo.kind] += 1
        if vo.verb:
            verbs[vo.verb] += 1
        if vo.kind == "verb_object":
            pairs[(vo.verb, vo.obj)] += 1
    # Fig. 2 counts a verb only where it has an object, so the rings are ranked by pairs, not by verbs
    pair_verbs: Counter[str] = Counter()
    objs: dict[str, Counter[str]] = defaultdict(Counter)
    for (v, o), n in pairs.items():
        pair_verbs[v] += n
        objs[v][o] += n
    top = [TopVerb(v, n, objs[v].most_common(top_objects))
           for v, n in sorted(pair_verbs.items(), key=lambda kv: (-kv[1], kv[0]))[:top_verbs]]
    return Diversity(total=sum(kinds.values()), kinds={k: kinds.get(k, 0) for k in KINDS},
                     distinct_verbs=len(verbs), distinct_pairs=len(pairs),
                     verbs=sorted(verbs.items(), key=lambda kv: (-kv[1], kv[0])), top=top)
