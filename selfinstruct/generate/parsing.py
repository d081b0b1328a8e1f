"""Parsing of raw model text into instructions, labels and instances. Pure functions, no model."""
from __future__ import annotations

import re
from dataclasses import dataclass

_TASK_SPLIT = re.compile(r"(?:^|\n)\s*(?:Task\s*)?(\d{1,3})\s*[:.)]\s*", re.IGNORECASE)
_WS = re.compile(r"\s+")


def _clean(text: str) -> str:
    text = _WS.sub(" ", text).strip()
    return text.strip("\"' ").strip() if text.count('"') == 2 and text.startswith('"') and text.endswith('"') else text


def parse_instructions(text: str, truncated: bool = False, completion: bool = True) -> list[str]:
    """Split a continuation of a numbered task list into instructions.

    In completion format the text continues right after "Task N:", so everything up to the next
    numbered marker is the first instruction. When generation stopped at the token limit the last item
    may be cut off and is dropped."""
    if not text.strip():
        return []
    pieces: list[str] = []
    if completion:
        body = text
    else:
        m = _TASK_SPLIT.search(text)
        if not m:
            return []
        body = text[m.end():]
    parts = _TASK_SPLIT.split(body)
    # parts = [first, num, item, num, item, ...]
    pieces.append(parts[0])
    for i in range(1, len(parts) - 1, 2):
        pieces.append(parts[i + 1])
    out = []
    for p in pieces:
        p = _clean(p.split("\n\n")[0])  # a blank line ends the item (the model moved on to something else)
        if p:
            out.append(p)
    if truncated and out and not _ends_cleanly(text):
        out.pop()
    return out


def _ends_cleanly(text: str) -> bool:
    return text.rstrip(" ").endswith("\n")


def parse_classification(text: str) -> bool | None:
    """The first word of the answer: yes -> True, no -> False, anything else -> None (unparseable)."""
    m = re.match(r"\s*[\"'*]*\s*(yes|no)\b", text, re.IGNORECASE)
    if not m:
        return None
    return m.group(1).lower() == "yes"


@dataclass
class ParsedInstance:
    input: str
    output: str


_EXAMPLE_SPLIT = re.compile(r"(?:^|\n)\s*Example\s*\d+\s*:?\s*(?:\n|$)", re.IGNORECASE)
_INPUT_RE = re.compile(r"^\s*Input\s*:\s*", re.IGNORECASE | re.MULTILINE)
_OUTPUT_RE = re.compile(r"^\s*Output\s*:\s*", re.IGNORECASE | re.MULTILINE)
_LABEL_RE = re.compile(r"^\s*Class label\s*:\s*", re.IGNORECASE | re.MULTILINE)
_NEXT_TASK = re.compile(r"\n\s*Task\s*:", re.IGNORECASE)
NOINPUT = {"<noinput>", "noinput", "<no input>", "none", "n/a", ""}


def _norm_input(s: str) -> str:
    s = s.strip()
    return "" if s.lower() in NOINPUT else s


def _cut_next_task(text: str) -> str:
    m = _NEXT_TASK.search(text)
    return text[:m.start()] if m else text


def parse_instances_input_first(text: str, truncated: bool = False) -> tuple[list[ParsedInstance], str | None]:
    """Parse "Input: ... Output: ..." pairs (optionally under "Example N" headers). The prompt ends with
    "Task: ...\\n", so the text starts with either "Example 1", "Input:" or "Output:" directly.
    Returns (instances, error reason or None)."""
    text = _cut_next_task(text)
    blocks = [b for b in _EXAMPLE_SPLIT.split(text) if b.strip()]
    out: list[ParsedInstance] = []
    for bi, block in enumerate(blocks):
        if truncated and bi == len(blocks) - 1 and len(blocks) > 1:
            break  # the last example may be cut off
        om = _OUTPUT_RE.search(block)
        if not om:
            continue
        im = _INPUT_RE.search(block[:om.start()])
        inp = block[im.end():om.start()] if im else ""
        output = block[om.end():]
        output = _INPUT_RE.split(output)[0]  # a following Input: without Example header
        output = _OUTPUT_RE.split(output)[0]  # a second Output: line is the model looping
        out.append(ParsedInstance(_norm_input(inp), output.strip()))
        # further Input/Output pairs in the same block (models often skip Example headers)
        rest = block[om.end():]
        for extra in re.split(r"\n(?=\s*Input\s*:)", rest, flags=re.IGNORECASE)[1:]:
            em = _OUTPUT_RE.search(extra)
            eim = _INPUT_RE.search(extra)
            if em and eim and eim.start() < em.start():
                eout = _OUTPUT_RE.split(_INPUT_RE.split(extra[em.end():])[0])[0]
                out.append(ParsedInstance(_norm_input(extra[eim.end():em.start()]), eout.strip()))
    if truncated and len(out) > 1 and len(blocks) <= 1:
        out.pop()
    if not out:
        return [], "no Input/Output pair found"
    return out, None


def parse_instances_output_first(text: str, truncated: bool = False) -> tuple[list[ParsedInstance], str | None]:
    """Parse "Class label: L\\nInput: ..." pairs. The prompt ends with "Class label:", so the text
    starts with the first label."""
    text = _cut_next_task("Class label:" + text)
    chunks = [c for c in _LABEL_RE.split(text) if c.strip()]
    out: list[ParsedInstance] = []
    for ci, chunk in enumerate(chunks):
        if truncated and ci == len(chunks) - 1 and len(chunks) > 1:
            break
        im = _INPUT_RE.search(chunk)
        if im:
            label, inp = chunk[:im.start()], chunk[im.end():]
        else:
            label, inp = chunk, ""
        label = label.strip().split("\n")[0].strip()
        if label:
            out.append(ParsedInstance(_norm_input(inp), label))
    if not out:
        return [], "no class label found"
    return out, None


_ALPACA_SPLIT = re.compile(r"\n?\s*###\s*\n?")


@dataclass
class AlpacaTask:
    instruction: str
    input: str
    output: str


def parse_alpaca(text: str, first_number: int, truncated: bool = False) -> list[tuple[AlpacaTask | None, str]]:
    """Parse Alpaca-style "N. Instruction: / N. Input: / N. Output:" blocks separated by ###.
    Returns (task, "") for good blocks and (None, reason) for malformed ones."""
    raw = f"{first_number}. Instruction:" + text
    blocks = [b for b in _ALPACA_SPLIT.split(raw) if b.strip()]
    res: list[tuple[AlpacaTask | None, str]] = []
    for bi, block in enumerate(blocks):
        if truncated and bi == len(blocks) - 1:
            res.append((None, "truncated"))
            break
        m = re.match(r"\s*\d+\s*\.\s*Instruction\s*:\s*(.*?)\n\s*\d+\s*\.\s*Input\s*:\s*(.*?)\n\s*\d+\s*\.\s*Output\s*:\s*(.*)$",
                     block, re.DOTALL | re.IGNORECASE)
        if not m:
            res.append((None, "malformed"))
            continue
        inst, inp, out = (g.strip() for g in m.groups())
        res.append((AlpacaTask(_WS.sub(" ", inst), _norm_input(inp), out), ""))
    return res
