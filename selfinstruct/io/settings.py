"""Settings: YAML -> typed dataclasses, and the command-line options derived from the same fields.

A config dataclass declares each field once, with its help, range and choices as field metadata
(`setting(...)`). From that one declaration come: type conversion and range checks with errors that
name file:line and the field, the click options of a command (as TRL derives its CLI from its config
dataclasses), and the generic `--set section.key=value`. Precedence: YAML < --set < a dedicated flag.
Cross-field rules live in the dataclass's own `check(self, err)` method."""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import UserError
from .jsonl import read_regular

Err = Callable[[str, str], typing.NoReturn]

# Upper bounds that several settings share: far beyond real use, they stop absurd values at the start of
# a run instead of in every request (a server refuses them) or in the engine's start
SEED_MAX = 2**32 - 1  # vLLM and transformers seed numpy with the run's seed, which takes 0..2**32-1
TOKENS_MAX = 1 << 24  # 16M tokens: a context or completion beyond any model's


def setting(default: Any = MISSING, *, help: str = "", min: float | None = None, max: float | None = None,
            min_exclusive: bool = False, choices: tuple | None = None, flag: str | None = None,
            factory: Callable[[], Any] | None = None, internal: bool = False) -> Any:
    """A config field with its documentation and constraints. `flag`: the command-line name ("--lr");
    commands that derive their options from a dataclass also get one for every scalar field without it."""
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive, "choices": choices,
            "flag": flag, "internal": internal}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------- reading YAML

class Lines:
    """Line numbers of YAML keys and values, by dotted path; keys given on the command line instead."""

    def __init__(self, node: yaml.Node | None = None):
        self.lines: dict[str, int] = {}
        self.command_line: set[str] = set()
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = f"{path}.{k.value}" if path else str(k.value)
                self.lines[p] = k.start_mark.line + 1
                self._walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, f"{path}[{i}]")

    def get(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0] if "." in path else ""
        return None

    def given_on_command_line(self, path: str) -> bool:
        p = path.split("[")[0]
        while p:
            if p in self.command_line:
                return True
            p = p.rpartition(".")[0]
        return False


class NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: a config never needs them, and they let a few lines expand to gigabytes
    ("billion laughs") or recurse without end."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a config",
                                              event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: str | Path) -> tuple[dict[str, Any], Lines]:
    """Read a YAML mapping and the line of every key; any problem is a UserError naming file:line."""
    path = Path(path)
    try:
        text = read_regular(path, missing="config file not found").decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"config is not valid UTF-8 (byte {e.start})", path=path) from None
    try:
        node = yaml.compose(text, Loader=NoAliasLoader)
        data = yaml.load(text, Loader=NoAliasLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping at the top level, got {type(data).__name__}", path=path, line=1)
    return data, Lines(node)


def error_reporter(path: Path | None, lines: Lines, prefix: str = "") -> Err:
    """err(field, message): raises a UserError naming the YAML line, or the command line."""
    def err(p: str, msg: str):
        if lines.given_on_command_line(p):
            raise UserError(f"{msg} (given on the command line)", field=p)
        raise UserError(msg, path=path, line=lines.get(prefix + p) if path else None, field=p)
    return err


# ------------------------------------------------------------------------------ overrides: --set, flags

def parse_set(item: str) -> tuple[str, Any]:
    """'a.b=value' -> ('a.b', value parsed as YAML: numbers, booleans, lists, null)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects section.key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], lines: Lines) -> None:
    """Write dotted-key overrides into the raw mapping (before conversion, so they are checked like YAML)."""
    for key, value in overrides.items():
        obj = data
        *parents, last = key.split(".")
        for p in parents:
            nxt = obj.get(p)
            if not isinstance(nxt, dict):
                nxt = obj[p] = {}
            obj = nxt
        obj[last] = value
        lines.command_line.add(key)


# ----------------------------------------------------------------------------- conversion and checking

def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or str(origin) == "<class 'types.UnionType'>"


def type_name(tp: Any) -> str:
    if _is_union(tp):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin is list:
        return f"list of {type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    return {type(None): "null", float: "number"}.get(tp, getattr(tp, "__name__", str(tp)))


_EXPONENT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def convert(value: Any, tp: Any, path: str, err: Err) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        return convert(value, [a for a in args if a is not type(None)][0], path, err)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            err(path, f"expected a mapping, got {type(value).__name__}")
        return build(tp, value, err, path)
    if origin is list:
        if not isinstance(value, list):
            err(path, f"expected {type_name(tp)}, got {type(value).__name__}")
        return [convert(v, args[0], f"{path}[{i}]", err) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            err(path, f"expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, str) and _EXPONENT.fullmatch(value):  # YAML 1.1 reads 2e-5 (no dot) as a string
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            err(path, f"expected a number, got {value!r}")
        # the one rule for every float setting, whatever its bounds: NaN passes every comparison (no min/max
        # catches it), and a NaN or infinite temperature, timeout or fraction would fail each request or a
        # later stage, not the start of the run
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float (1000...0)
            number = math.inf if value > 0 else -math.inf
        if not math.isfinite(number):
            err(path, f"expected a finite number, got {number!r}")
        return number
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            err(path, f"expected an integer, got {value!r}")
        return value
    if tp is bool and not isinstance(value, bool):
        err(path, f"expected true or false, got {value!r}")
    if tp is str and not isinstance(value, str):
        err(path, f"expected a string, got {value!r}")
    return value


def public_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def unknown_key(err: Err, path: str, key: Any, allowed: Any) -> None:
    close = [n for n in sorted(allowed) if n.startswith(str(key)[:3])]
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    err(path, f"unknown key{hint}; allowed: {', '.join(sorted(allowed))}")


def build(cls: type, data: dict[str, Any], err: Err, path: str = "") -> Any:
    """A `cls` from a raw mapping: unknown keys, types, ranges and choices checked; then `cls.check`.
    A key the class lists in its `MOVED` mapping (a removed setting -> what to do instead) is refused with
    that message when it is set to something: an old config says what changed, not only that the key is
    unknown. Set to nothing (null, empty) it is ignored: the run.json of an older run records every setting
    at its default, and `dpo --iterations` loads it as a config again."""
    hints = typing.get_type_hints(cls)
    fields = public_fields(cls)
    moved: dict[str, str] = getattr(cls, "MOVED", {})
    kwargs = {}
    for key, value in data.items():
        p = f"{path}.{key}" if path else str(key)
        if key not in fields:
            if key in moved:
                if value in (None, "", [], {}):
                    continue
                err(p, moved[key])
            unknown_key(err, p, key, fields)
        kwargs[key] = convert(value, hints[key], p, err)
    obj = cls(**kwargs)
    check_ranges(obj, err, path)
    return obj


def check_ranges(obj: Any, err: Err, path: str = "") -> None:
    """The constraints declared with `setting(...)` (on values from YAML, --set, flags or defaults),
    then the dataclass's own cross-field `check(err, path)`."""
    for f in dataclasses.fields(obj):
        m, value, p = f.metadata, getattr(obj, f.name), f"{path}.{f.name}" if path else f.name
        if value is None or m.get("internal"):
            continue
        lo, hi, choices = m.get("min"), m.get("max"), m.get("choices")
        if choices is not None:
            for i, v in enumerate(value if isinstance(value, list) else [value]):
                if v not in choices:
                    where = f"{p}[{i}]" if isinstance(value, list) else p
                    err(where, f"must be one of {', '.join(map(str, choices))}, got {v!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            exclusive = m.get("min_exclusive")
            if (lo is not None and (value < lo or (exclusive and value == lo))) or (hi is not None and value > hi):
                bounds = ([f"{'>' if exclusive else '>='} {lo}"] if lo is not None else []) + \
                         ([f"<= {hi}"] if hi is not None else [])
                err(p, "must be " + " and ".join(bounds))
    check = getattr(obj, "check", None)
    if callable(check):
        check(lambda p, msg: err(f"{path}.{p}" if path else p, msg))


# --------------------------------------------------------------------------------- command-line options

@dataclass
class Option:
    key: str  # dotted path in the config
    flag: str  # --name
    tp: Any
    help: str
    choices: tuple | None


def options_of(cls: type, *, only_flagged: bool = False, prefix: str = "") -> list[Option]:
    """Command-line options for the scalar (and list-of-scalar) fields of `cls` and its nested configs.
    Names: the field's `flag` metadata, else `--` + the dotted path with dashes."""
    hints = typing.get_type_hints(cls)
    out = []
    for name, f in public_fields(cls).items():
        tp = hints[name]
        inner = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
        base = inner[0] if inner else tp
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(base):
            out += options_of(base, only_flagged=only_flagged, prefix=f"{key}.")
            continue
        if typing.get_origin(base) is dict or (only_flagged and not f.metadata.get("flag")):
            continue
        if typing.get_origin(base) is list and dataclasses.is_dataclass(typing.get_args(base)[0]):
            continue  # a list of sections (finetune.data): YAML or --set only
        flag = f.metadata.get("flag") or "--" + key.replace(".", "-").replace("_", "-")
        out.append(Option(key, flag, base, f.metadata.get("help", ""), f.metadata.get("choices")))
    return out


def click_options(opts: list[Option]) -> Callable:
    """A decorator adding one click option per Option (default None: not given), named by its key."""
    import click

    def deco(fn):
        for o in reversed(opts):
            dest = o.key.replace(".", "__")
            if o.tp is bool:
                pos = o.flag
                neg = "--no-" + pos[2:]
                fn = click.option(f"{pos}/{neg}", dest, default=None, help=o.help)(fn)
            elif typing.get_origin(o.tp) is list:
                fn = click.option(o.flag, dest, multiple=True, help=o.help + " (repeatable)")(fn)
            else:
                ctype = click.Choice(list(o.choices)) if o.choices else {int: int, float: float}.get(o.tp, str)
                fn = click.option(o.flag, dest, type=ctype, default=None, help=o.help)(fn)
        return fn
    return deco


def given(opts: list[Option], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The dotted-key overrides among a command's keyword arguments (pops them)."""
    out = {}
    for o in opts:
        v = kwargs.pop(o.key.replace(".", "__"), None)
        if v is None or v == ():
            continue
        out[o.key] = list(v) if isinstance(v, tuple) else v
    return out


def load_settings(cls: type, path: str | Path | None, *, section: str | None = None,
                  sets: list[str] | tuple[str, ...] = (), flags: dict[str, Any] | None = None) -> Any:
    """A `cls` from YAML (`path`, optionally only its `section:`), then `--set` items, then flags."""
    data: dict[str, Any] = {}
    lines = Lines()
    if path is not None:
        path = Path(path)
        doc, lines = read_yaml(path)
        if section is None:
            data = doc
        else:
            for key in doc:
                if key != section:
                    raise UserError(f"unknown top-level key; put the settings under '{section}:'", path=path,
                                    line=lines.get(str(key)), field=str(key))
            if section not in doc:
                raise UserError(f"no '{section}:' section", path=path, line=1)
            data = doc[section] if doc[section] is not None else {}
            if not isinstance(data, dict):
                raise UserError(f"expected a mapping, got {type(data).__name__}", path=path,
                                line=lines.get(section), field=section)
    apply_overrides(data, dict(parse_set(s) for s in sets), lines)
    apply_overrides(data, {k: v for k, v in (flags or {}).items() if v is not None}, lines)
    obj = build(cls, data, error_reporter(path, lines, f"{section}." if section else ""))
    if path is not None and any(f.name == "source" for f in dataclasses.fields(obj)):
        obj.source = str(path)
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """The public fields (not `internal` ones such as the source file), for run.json and hashes."""
    d = dataclasses.asdict(obj)
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            d.pop(f.name, None)
    return d
