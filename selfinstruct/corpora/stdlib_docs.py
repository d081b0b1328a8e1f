"""A real, offline document set for the knowledge experiment (`selfinstruct knowledge`): the docstrings
of a named set of Python standard-library modules, as the installed Python has them (PSF License), one
Markdown file per module: the module's docstring, then each public function's and class's. Every fresh
machine with this Python has the same files, and `corpus_digest` pins them: the questions in
benchmarks/stdlib_docs/questions.jsonl quote answer spans from these files, and a test checks that
every span is still there."""
from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from pathlib import Path

# modules whose docstrings are prose (not one-line summaries of C functions): about 50k tokens in all
MODULES = ("textwrap", "shlex", "fnmatch", "heapq", "bisect", "statistics", "fractions", "difflib", "timeit",
           "secrets", "uuid", "calendar", "sched", "queue", "ipaddress", "tempfile", "zipfile", "gzip",
           "pprint", "string", "colorsys", "getopt", "cmd", "base64", "hmac", "graphlib", "contextlib",
           "argparse", "json", "subprocess", "shutil", "csv", "dataclasses", "threading", "optparse",
           "urllib.parse", "logging", "collections", "enum", "http.client", "functools", "doctest")


def module_markdown(name: str) -> str:
    mod = importlib.import_module(name)
    parts = [f"# {name}", "", inspect.cleandoc(mod.__doc__ or "").strip()]
    public = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
    for attr in public:
        obj = getattr(mod, attr, None)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, "__module__", None) != name:
            continue
        doc = inspect.getdoc(obj)
        if doc and len(doc.split()) >= 8:
            parts += ["", f"## {name}.{attr}", "", doc.strip()]
    return "\n".join(parts).strip() + "\n"


def write_corpus(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name in MODULES:
        f = out / f"{name}.md"
        f.write_text(module_markdown(name), encoding="utf-8")
        files.append(f)
    return files


def corpus_digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))
