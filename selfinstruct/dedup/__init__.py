"""Exact ROUGE-L near-duplicate detection (rouge-score's decisions, fast): scoring, the incremental
index the generator stages use, and the batch `dedup` behind `selfinstruct dedup`."""
from .index import Match, RougeIndex, dedup, rouge_l_f, tokenize

__all__ = ["Match", "RougeIndex", "dedup", "rouge_l_f", "tokenize"]
