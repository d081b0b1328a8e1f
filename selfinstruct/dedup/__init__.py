"""Exact ROUGE-L near-duplicate detection (rouge-score's decisions, fast): scoring, the incremental
index the generator stages use, and the batch `dedup` behind `selfinstruct dedup`.

Semantics are bit-identical to the filter used by Self-Instruct / Stanford Alpaca (``rouge_score``
0.1.2, ``RougeScorer(["rougeL"], use_stemmer=False)``, score of a candidate ``new`` against a pool
member ``old`` = ``rouge_scorer._score_lcs(new_tokens, old_tokens).fmeasure``).  A candidate is a
duplicate when the maximum score over the pool is strictly greater than the threshold; greedy dedup
keeps a text when it is not a duplicate of any already kept text (or pre-loaded pool item).

Modules: ``score`` (tokenize, exact score, pruning bounds), ``postings`` (the index's posting
lists), ``search`` (candidate verification in C), ``index`` (:class:`RougeIndex`, incremental;
its docstring explains the algorithm), ``batch`` (:func:`dedup`), ``command`` (the CLI).
"""
from .batch import dedup
from .index import Match, RougeIndex
from .score import rouge_l_f, tokenize

__all__ = ["Match", "RougeIndex", "dedup", "rouge_l_f", "tokenize"]
