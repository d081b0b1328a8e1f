"""The settings stages share, in a leaf that every stage module imports instead of the pipeline config
(which lists the stages, so a stage importing it would import itself): how a request samples (`Sampling`),
where a stage's requests go when not where the pipeline's go (`StageModel`), the generators' instruction
filters, and the per-request seeds (`derive_seed`)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..io.settings import TOKENS_MAX, setting


@dataclass
class Sampling:
    temperature: float = setting(1.0, min=0.0, max=100.0, help="0: greedy")
    top_p: float = setting(1.0, min=0.0, max=1.0, min_exclusive=True)
    max_tokens: int = setting(256, min=1, max=TOKENS_MAX, help="completion budget per request")
    stop: list[str] = setting(factory=list, help="stop strings")
    frequency_penalty: float = setting(0.0, min=-2.0, max=2.0)
    presence_penalty: float = setting(0.0, min=-2.0, max=2.0)


@dataclass
class InstructionFilters:
    rouge_threshold: float = setting(0.7, min=0.0, max=1.0, help="drop when ROUGE-L F1 to the pool > this")
    min_words: int = setting(3, min=0)
    max_words: int = setting(150, min=1)
    blocked_keywords: list[str] = setting(factory=lambda: [
        "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
        "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram", "photo", "photos"])
    blocked_prefixes: list[str] = setting(factory=lambda: ["Write a program"])

    def check(self, err) -> None:
        if self.min_words > self.max_words:
            err("min_words", f"must be <= max_words ({self.max_words}): no instruction could pass")


@dataclass
class StageModel:
    """Where a stage's requests go, when not where the pipeline's go (a teacher, a judge)."""
    model: str | None = setting(None, help="this stage's model (default: the pipeline's)")
    backend: str | None = setting(None, help="this stage's backend (default: the pipeline's)")
    base_urls: list[str] | None = setting(None, help="server URLs for an OpenAI-compatible backend")


def derive_seed(*parts) -> int:
    """Deterministic 31-bit seed from (global seed, stage, record id ...): resumes reproduce requests."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF
