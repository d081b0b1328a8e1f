"""Instruction and instance filters. Each returns a reason string (why it is dropped) or None."""
from __future__ import annotations

import re
import string

_WORD = re.compile(r"\S+")


def instruction_reject_reason(text: str, f) -> str | None:
    """Heuristic filters from Self-Instruct/Alpaca; `f` is an InstructionFilters config."""
    if not text.strip():
        return "empty"
    words = len(_WORD.findall(text))
    if words < f.min_words:
        return "too_short"
    if words > f.max_words:
        return "too_long"
    if text[0] in string.punctuation:
        return "starts_with_punctuation"
    if not text[0].isascii():
        return "starts_non_ascii"
    low = text.lower()
    for kw in f.blocked_keywords:
        if re.search(rf"\b{re.escape(kw.lower())}\b", low):
            return "blocked_keyword"
    for p in f.blocked_prefixes:
        if text.startswith(p):
            return "blocked_prefix"
    return None


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def instance_reject_reason(instruction: str, inp: str, out: str, cfg) -> str | None:
    """`cfg` is a FilterConfig."""
    if len(out.strip()) < max(1, cfg.min_output_chars):
        return "empty_output"
    if len(_WORD.findall(out)) > cfg.max_output_words:
        return "output_too_long"
    if len(_WORD.findall(inp)) > cfg.max_input_words:
        return "input_too_long"
    if inp.strip() and _norm(inp) == _norm(out):
        return "input_equals_output"
    if is_repetitive(out):
        return "repetitive_output"
    ni, no = _norm(instruction), _norm(out)
    if no == ni or (len(ni) > 20 and ni in no):
        return "output_repeats_instruction"
    return None


def is_repetitive(text: str, n: int = 4) -> bool:
    """Degenerate looping: many lines that repeat, or a word n-gram making up most of the text."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 4 and len(set(lines)) / len(lines) < 0.5:
        return True
    words = text.lower().split()
    if len(words) >= 4 * n:
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        if len(set(grams)) / len(grams) < 0.4:
            return True
    return False
