"""A deterministic, out-of-order backend for tests (never the default: `backend: fake` must be named).

Each answer is a pure function of the request (prompt + seed), like a seeded LLM, and recognises the
prompt shapes of the built-in stages: numbered task lists (bootstrap), "Is it classification?",
"Class label:" (output-first instances), "Task: ...\\n" (input-first instances), Alpaca's
"N. Instruction:" and the judge's rubrics (a scripted judge, `judge_rule`: the score in the place of
each rubric, the score alone when `Request.choices` asks for structured output, "Rating: N/A" where a
real engine could not say it).
Some answers are deliberately bad (too short, blocked keywords, unparseable, copies of a
demonstration, a judge's "Rating: N/A") so that every reject path is exercised. Requests finish in a
random order, a random number per poll, so that tests see the ordering problems a real engine causes."""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Hashable

from ..io.settings import setting
from .registry import register_backend
from .base import Backend, Completion, Request


@dataclass
class FakeOptions:
    capacity: int = setting(8, min=1, help="requests it says it runs at once")
    order_seed: int = setting(0, help="seed of the order in which requests finish")
    fail_share: float = setting(0.0, min=0.0, max=1.0, help="share of requests that fail (by request hash)")

WORDS = ("river mountain poem budget recipe sentence customer email planet story invoice garden "
         "protein melody chess bridge ticket vaccine rocket lantern harbor violin glacier desert").split()
VERBS = ("Describe", "Explain", "Compare", "Summarize", "List", "Rewrite", "Classify", "Suggest")
LABELS = ("Positive", "Negative", "Neutral")


def _rng(r: Request, tag: str = "") -> random.Random:
    prompt = r.prompt if isinstance(r.prompt, str) else str(r.prompt)
    return random.Random(hashlib.sha256(f"{tag}|{prompt}|{r.seed}".encode()).hexdigest())


def _sentence(rng: random.Random, n: int = 7) -> str:
    return " ".join([rng.choice(VERBS)] + rng.sample(WORDS, n)) + "."


def _task_list(rng: random.Random, prompt: str, first: int) -> list[str]:
    tasks = []
    for _ in range(rng.randint(0, 3)):
        kind = rng.random()
        if kind < 0.08:
            tasks.append(rng.choice(VERBS) + " it.")  # too short
        elif kind < 0.14:
            tasks.append(f"Draw an image of the {rng.choice(WORDS)} and the {rng.choice(WORDS)}.")  # blocked keyword
        elif kind < 0.20:
            demos = re.findall(r"Task \d+: (.+)", prompt)
            tasks.append(rng.choice(demos) if demos else _sentence(rng))  # a near-copy: ROUGE-L rejects it
        else:
            tasks.append(_sentence(rng))
    return [f"Task {first + i}: {t}" if i else t for i, t in enumerate(tasks)]


# A judge prompt shows the answer fenced after these (the built-in rubrics of generate/prompts.py, fence.py).
_JUDGED = re.compile(r"(?:\[Response\]|<response>)\n<<<BEGIN DATA (\w+)>>>\n(.*?)\n<<<END DATA \1>>>", re.DOTALL)
# as models answer each rubric: AlpaGasus asks for the score on the first line, the additive rubric for a
# last line "Score: N"; with structured outputs (Request.choices) the answer is the score alone
JUDGE_FORMATS = {"[Response]": ("{n}", "Score: {n}/5", "**{n}**", "I'd give it a {word}.",
                                "{n}. The answer follows the instruction.",
                                "Rating: {n}\nExplanation: the response addresses the task.",
                                "{n}\nClear and relevant; a 5 would need 2 examples."),
                 "<response>": ("It is relevant and clear.\nScore: {n}",
                                "The response earns 1 point for relevance and more for clarity.\n\nScore: {n}")}
REFUSED = "vaccine"  # the scripted judge will not rate an answer that mentions it
NUMBER_NAMES = "zero one two three four five".split()


def judge_rule(output: str) -> int | None:
    """The scripted judge's score of an answer: a pure function of its text (1-5), or None ("Rating: N/A")
    when it mentions REFUSED. Tests compute what a judge must keep from this."""
    if re.search(rf"\b{REFUSED}\b", output, re.IGNORECASE):
        return None
    return 1 + int(hashlib.sha256(output.strip().encode()).hexdigest(), 16) % 5


def judged_answer(text: str) -> str | None:
    """The answer a judge prompt shows, or None when the text is no judge prompt."""
    m = _JUDGED.search(text)
    return m.group(2) if m else None


def _judge(rng: random.Random, r: Request, text: str) -> str | None:
    output = judged_answer(text)
    if output is None:
        return None
    n = judge_rule(output)
    if n is None:
        return "Rating: N/A"
    formats = ("{n}",) if r.choices else JUDGE_FORMATS["[Response]" if "[Response]" in text else "<response>"]
    return rng.choice(formats).format(n=n, word=NUMBER_NAMES[n])  # the format varies, the score does not


def answer(r: Request) -> str:
    """The fake model's answer to a request."""
    rng = _rng(r)
    if not isinstance(r.prompt, str):  # chat prompts: a judge, or bootstrap or alpaca in chat format
        text = r.prompt[-1]["content"]
        judged = _judge(rng, r, text)
        if judged is not None:
            return judged
        grounded = _grounded(rng, text)
        if grounded is not None:
            return grounded
        if "Instruction:" in text:
            return "1. Instruction:" + _alpaca(rng, 1)
        tasks = [t.split(": ", 1)[1] if t.startswith("Task ") else t for t in _task_list(rng, text, 1)]
        return "".join(f"Task {i}: {t}\n" for i, t in enumerate(tasks, 1))
    p = r.prompt
    if p.endswith("Is it classification?"):
        x = rng.random()
        return " Maybe" if x < 0.1 else (" Yes" if x < 0.45 else " No")
    if p.endswith("Class label:"):
        if rng.random() < 0.1:
            return ""
        labels = rng.sample(LABELS, rng.randint(1, 3))
        return "".join(f" {lab}\nInput: {_sentence(rng, 5)}\nClass label:" for lab in labels).removesuffix(
            "\nClass label:")
    if re.search(r"\n(\d+)\. Instruction:$", p):
        first = int(re.search(r"(\d+)\. Instruction:$", p).group(1))
        return _alpaca(rng, first)
    m = re.search(r"Task (\d+):$", p)
    if m:
        tasks = _task_list(rng, p, int(m.group(1)) + 1)
        return "".join(f" {t}\n" for t in tasks[:1]) + "".join(f"{t}\n" for t in tasks[1:])
    if p.endswith("\n") and "Task: " in p:
        x = rng.random()
        if x < 0.1:
            return "I am not sure what to say here."  # unparseable
        out = []
        for i in range(rng.randint(1, 3)):
            inp = "" if rng.random() < 0.3 else _sentence(rng, 4)
            res = "" if rng.random() < 0.05 else _sentence(rng, 6)  # an empty output: the filter drops it
            out.append((f"Example {i + 1}\n" if x > 0.5 else "") + f"Input: {inp or '<noinput>'}\nOutput: {res}\n")
        return "".join(out)
    return ""


_SOURCE = re.compile(r"\[Source text\]\n(.*?)\n\[End of source text\]", re.DOTALL)


def _grounded(rng: random.Random, text: str) -> str | None:
    """The grounded stages' prompts (generate/prompts.py): an instruction made of the source's words
    (sometimes empty, or leaning on "the passage"), or an answer: mostly a sentence of the source
    (supported), sometimes words the source does not have (unsupported), sometimes nothing."""
    m = _SOURCE.search(text)
    if m is None:
        return None
    source = m.group(1)
    words = re.findall(r"[A-Za-z]{4,}", source) or ["thing"]
    if "[Instruction]" in text:
        x = rng.random()
        if x < 0.05:
            return ""
        if x < 0.25:
            return _sentence(rng, 6)
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", source) if len(s.split()) >= 3]
        return rng.choice(sentences) if sentences else " ".join(words[:8])
    x = rng.random()
    if x < 0.05:
        return ""
    if x < 0.2:
        return "Summarise the passage."
    a, b = rng.sample(words, 2) if len(words) > 1 else (words[0], words[0])
    return rng.choice(["Question: What does the {} say about {}?", "Explain how {} relates to {}.",
                       "List the facts about {} and {}.", "**Instruction:** Why is {} important for {}?"]).format(a, b)


def _alpaca(rng: random.Random, first: int) -> str:
    blocks = []
    for k in range(rng.randint(1, 4)):
        n = first + k
        if rng.random() < 0.1:
            blocks.append(f"{n}. Instruction: {_sentence(rng)}\n{n}. Output without input")  # malformed
            continue
        inp = "<noinput>" if rng.random() < 0.4 else _sentence(rng, 4)
        blocks.append(f"{n}. Instruction: {_sentence(rng)}\n{n}. Input:\n{inp}\n{n}. Output:\n{_sentence(rng, 6)}")
    return "\n###\n".join(blocks).split("Instruction:", 1)[1]  # the prompt ends with the first "N. Instruction:"


@register_backend("fake", FakeOptions)
class FakeBackend(Backend):
    """Finishes the started requests in a random order (seeded), a random number per poll."""

    def __init__(self, model: str = "fake", options: FakeOptions | None = None, seed: int = 0, *,
                 order_seed: int | None = None, cap: int | None = None):
        options = options or FakeOptions()
        self.model = model
        self.rng = random.Random(options.order_seed if order_seed is None else order_seed)
        self.cap = options.capacity if cap is None else cap
        self.fail_share = options.fail_share
        self.live: dict[int, Request] = {}
        self.n = self.max_live = 0
        self.aborted: list[Hashable] = []
        self.started: list[Request] = []
        self.closed = False

    answer = staticmethod(answer)

    def start(self, request: Request) -> int:
        self.n += 1
        self.live[self.n] = request
        self.started.append(request)
        self.max_live = max(self.max_live, len(self.live))
        return self.n

    def poll(self) -> list[tuple[int, Completion]]:
        if not self.live:
            return []
        hs = self.rng.sample(sorted(self.live), self.rng.randint(1, len(self.live)))
        out = []
        for h in hs:
            r = self.live.pop(h)
            if self.fail_share and _rng(r, "fail").random() < self.fail_share:
                out.append((h, Completion(text="", error="HTTP 503: the fake server is down")))
                continue
            text = self.answer(r)  # a subclass may script other answers
            out.append((h, Completion(text=text, finish_reason="stop", prompt_tokens=len(str(r.prompt)) // 4,
                                      completion_tokens=len(text) // 4)))
        return out

    def abort(self, handles) -> None:
        for h in handles:
            self.live.pop(h, None)
        self.aborted += list(handles)

    def capacity(self, request: Request) -> int:
        return self.cap

    def close(self) -> None:
        self.closed = True
