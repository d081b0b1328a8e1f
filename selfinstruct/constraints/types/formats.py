"""Formats checked by real parsers: a YAML mapping with given keys (PyYAML), TOML with given tables
(tomllib), a Markdown pipe table of a given shape. JSON, CSV with given columns and bullet lists are
what the evaluation suites ask for, so none of them is here.

A parser error, of any kind, is a failed check. Answers longer than `MAX_PARSE_CHARS` fail the parsed
formats without being parsed: PyYAML builds a 1 MB mapping in seconds, and the loose check parses up to
eight variants of an answer; no answer to a training prompt is that long."""
from __future__ import annotations

import re
import tomllib

import yaml

from ..base import ConstraintType, quoted_list
from ..pools import KEYS
from ..registry import register_constraint

MAX_PARSE_CHARS = 100_000

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it
# A delimiter cell of a Markdown table: dashes, optionally aligned with colons.
_DELIMITER_CELL = re.compile(r":?-+:?")

# The formats are whole answers of their own: one answer cannot be two of them, nor prose sentences,
# bracketed words or a grid of lines.
_PROSE_RULES = frozenset({"train:hyphen_sentences", "train:sentence_first_word", "train:sentence_last_word",
                          "train:square_bracket_words", "train:words_per_line"})
_DOCUMENT_RULES = frozenset({"train:answer_first_word", "train:answer_last_word", "train:bigram_wrap",
                             "train:max_word_length"})


def _yaml_mapping(text: str) -> dict | None:
    """The block-style YAML mapping `text` is, or None (a flow mapping such as a JSON object is None)."""
    loader = None
    try:
        loader = _YamlLoader(text)  # libyaml encodes the text first: a lone surrogate fails here
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode) or node.flow_style:
            return None
        data = loader.construct_document(node)
    except Exception:  # any parser or constructor error (bad syntax, unhashable key, unencodable text)
        return None
    finally:
        if loader is not None:
            loader.dispose()
    return data if isinstance(data, dict) else None


@register_constraint
class YamlKeys(ConstraintType):
    id = "train:yaml_keys"
    loose_markdown = False  # (ConstraintType.loose_markdown)
    family = "formats"
    params = {"keys": f"2..6 top-level keys from {len(KEYS)} (e.g. 'summary', 'next_steps')"}
    phrasings = (
        "Answer with a YAML document only: a mapping whose top-level keys are exactly {keys}, each with a value.",
        "Format your entire response as block-style YAML with the keys {keys} and no other top-level key.",
        "Write the answer as YAML (not JSON): a mapping of exactly these keys: {keys}. Give every key a value.",
    )
    nearest_eval = {
        "detectable_format:json_format": "any JSON; here block-style YAML (a JSON object is refused) with "
                                         "exactly the given keys, read by a YAML parser",
        "custom:csv_city": "CSV rows under given column names; here one mapping with given keys",
    }
    conflicts = _PROSE_RULES | _DOCUMENT_RULES | {"train:toml_tables", "train:markdown_table"}

    def sample(self, rng):
        return {"keys": rng.sample(KEYS, rng.randint(2, 6))}

    def render(self, kwargs):
        return {"keys": quoted_list(list(kwargs["keys"]))}

    def holds(self, text: str, keys: list[str]) -> bool:
        if len(text) > MAX_PARSE_CHARS:
            return False
        data = _yaml_mapping(text)
        return (data is not None and all(isinstance(k, str) for k in data) and set(data) == set(keys)
                and all(v is not None for v in data.values()))


@register_constraint
class TomlTables(ConstraintType):
    id = "train:toml_tables"
    loose_markdown = False  # (ConstraintType.loose_markdown)
    family = "formats"
    params = {"tables": f"2..5 table names from {len(KEYS)}"}
    phrasings = (
        "Answer with a TOML document only, made of exactly these tables: {tables}. Each table needs at "
        "least one key.",
        "Format the whole response as valid TOML whose top level is the tables {tables} and nothing else.",
        "Write your answer as TOML with one [table] for each of {tables}; put every value inside a table.",
    )
    nearest_eval = {
        "detectable_format:json_format": "any JSON; here TOML, read by a TOML parser, with given tables",
        "detectable_format:multiple_sections": "sections marked 'SECTION n' in prose; here named TOML tables",
    }
    conflicts = _PROSE_RULES | _DOCUMENT_RULES | {"train:yaml_keys", "train:markdown_table"}

    def sample(self, rng):
        return {"tables": rng.sample(KEYS, rng.randint(2, 5))}

    def render(self, kwargs):
        return {"tables": quoted_list(list(kwargs["tables"]))}

    def holds(self, text: str, tables: list[str]) -> bool:
        if len(text) > MAX_PARSE_CHARS:
            return False
        try:
            data = tomllib.loads(text)
        except Exception:  # TOMLDecodeError, and anything else the parser meets
            return False
        return set(data) == set(tables) and all(isinstance(v, dict) and v for v in data.values())


def _cells(row: str) -> list[str]:
    """The cells of a table row "| a | b |" (an escaped "\\|" stays inside its cell)."""
    return [c.strip() for c in row.strip()[1:-1].replace("\\|", "\0").split("|")]


def _only_table(text: str, max_rows: int) -> list[str] | None:
    """The rows of the one table in `text` (a run of consecutive lines that start and end with "|"), or
    None when there is none, more than one, or one of more than `max_rows` rows (stops reading there)."""
    rows: list[str] = []
    ended = False
    for line in text.splitlines():
        s = line.strip()
        if len(s) >= 2 and s[0] == "|" and s[-1] == "|":
            if ended or len(rows) == max_rows:
                return None
            rows.append(s)
        elif rows:
            ended = True
    return rows or None


@register_constraint
class MarkdownTable(ConstraintType):
    id = "train:markdown_table"
    loose_markdown = False  # (ConstraintType.loose_markdown)
    family = "formats"
    params = {"columns": "columns, 2..6", "rows": "data rows under the header, 2..10"}
    phrasings = (
        "Include exactly one Markdown table with {columns} columns and {rows} data rows (plus its header row).",
        "Present the key information in a single pipe-delimited Markdown table: a header, a --- separator "
        "row, then exactly {rows} rows of {columns} cells each.",
        "Your answer must contain one Markdown table (every row starting and ending with |) that has "
        "{columns} columns and {rows} rows below the header.",
    )
    nearest_eval = {
        "custom:csv_city": "comma-separated values under given column names; here a Markdown pipe table of a "
                           "given shape inside any answer",
        "custom:csv_quotes": "tab-separated, quoted CSV fields; here Markdown pipes and a --- separator row",
        "format:output_template": "a fixed text template to fill in; here a table of a given shape",
    }
    conflicts = _PROSE_RULES | {"train:yaml_keys", "train:toml_tables"}

    def sample(self, rng):
        return {"columns": rng.randint(2, 6), "rows": rng.randint(2, 10)}

    def holds(self, text: str, columns: int, rows: int) -> bool:
        found = _only_table(text, rows + 2) if "|" in text else None
        if found is None or len(found) != rows + 2:
            return False
        header, delimiter, *body = (_cells(r) for r in found)
        return (len(header) == columns and all(header)
                and len(delimiter) == columns and all(_DELIMITER_CELL.fullmatch(c) for c in delimiter)
                and all(len(r) == columns for r in body))
