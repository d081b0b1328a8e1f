"""The words constraint parameters are drawn from. Wide on purpose: a model trained on a few fixed words
learns the words, not the rule. Plain lowercase ASCII, at most 12 letters."""
from __future__ import annotations

# Words that can open a sentence or an answer on any topic.
OPENERS = (
    "actually", "also", "basically", "besides", "briefly", "certainly", "clearly", "consider", "essentially",
    "first", "frankly", "generally", "here", "honestly", "imagine", "importantly", "indeed", "instead",
    "look", "meanwhile", "moreover", "naturally", "next", "notably", "now", "obviously", "often", "overall",
    "perhaps", "really", "remember", "simply", "so", "still", "surely", "then", "today", "truly", "well",
    "yes",
)

# Words that can close a sentence or an answer on any topic.
CLOSERS = (
    "again", "already", "always", "anyway", "carefully", "certainly", "clearly", "daily", "entirely",
    "eventually", "everywhere", "finally", "forever", "fully", "here", "indeed", "instead", "later", "mostly",
    "naturally", "now", "often", "overall", "perhaps", "quickly", "rarely", "really", "since", "slowly",
    "soon", "still", "there", "today", "together", "too", "truly", "well", "yet",
)

ADJECTIVES = (
    "amber", "bright", "calm", "clever", "crimson", "distant", "eager", "gentle", "golden", "hidden", "humble",
    "lucky", "misty", "noble", "quiet", "rapid", "silver", "steady", "velvet", "wild",
)
NOUNS = (
    "anchor", "beacon", "canyon", "comet", "compass", "ember", "falcon", "garden", "harbor", "lantern",
    "meadow", "orchard", "otter", "pebble", "river", "signal", "summit", "thistle", "voyage", "willow",
)

# snake_case keys for YAML mappings and TOML tables.
KEYS = (
    "title", "summary", "author", "status", "priority", "owner", "category", "version", "notes", "steps",
    "reason", "result", "source", "target", "deadline", "budget", "risks", "benefits", "audience", "tone",
    "language", "location", "duration", "cost", "rating", "tags", "example", "answer", "question", "topic",
    "goal", "method", "outcome", "next_steps", "main_idea", "key_points", "pros", "cons", "verdict",
    "confidence",
)

# The parser-checked formats (types/formats.py): a YAML or TOML document or a table has no prose
# sentences, brackets or words for the sentence- and word-level rules to apply to
FORMAT_TYPES = frozenset({"train:yaml_keys", "train:toml_tables", "train:markdown_table"})
