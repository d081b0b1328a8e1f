"""A real labelled text dataset, written offline from the installed Python: the first sentence of the
docstring of each public function and class of named standard-library modules (`text`), labelled with
the chapter of the Python Library Reference its module is documented in (`label`): text processing,
numeric and mathematical, file and directory access, data persistence, compression and archiving,
concurrent execution, internet protocols, development tools. The modules are not those of the
knowledge experiment's documents (stdlib_docs.py). PSF License, like the docstrings."""
from __future__ import annotations

import csv
import importlib
import inspect
import re
from pathlib import Path

# the Library Reference's chapters (docs.python.org/3/library/index.html), a few modules each
CHAPTERS = {
    "text processing": ("re", "unicodedata", "stringprep", "readline", "rlcompleter"),
    "numeric and mathematical": ("math", "cmath", "decimal", "random", "numbers", "operator", "itertools"),
    "file and directory access": ("pathlib", "os.path", "filecmp", "glob", "linecache", "stat", "fileinput"),
    "data persistence": ("pickle", "copyreg", "shelve", "marshal", "dbm", "sqlite3", "pickletools"),
    "compression and archiving": ("zlib", "bz2", "lzma", "tarfile"),
    "concurrent execution": ("concurrent.futures", "multiprocessing.pool", "contextvars", "selectors", "asyncio.locks"),
    "internet protocols": ("ftplib", "poplib", "imaplib", "smtplib", "socketserver", "http.server", "urllib.request",
                           "xmlrpc.client", "http.cookiejar"),
    "development tools": ("typing", "pydoc", "unittest.case", "unittest.mock", "traceback", "warnings", "inspect"),
}
LICENSE = "PSF-2.0"


def first_sentence(doc: str) -> str:
    para = re.split(r"\n\s*\n", doc.strip())[0]
    text = " ".join(para.split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text).strip()


def rows() -> list[dict[str, str]]:
    out, seen = [], set()
    for label, modules in CHAPTERS.items():
        for name in modules:
            try:
                mod = importlib.import_module(name)
            except ImportError:  # (readline, dbm backends: not on every build) the digest says which ran
                continue
            for attr in sorted(vars(mod)):
                obj = getattr(mod, attr)
                if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj) or
                                                inspect.isbuiltin(obj)):
                    continue
                home = str(getattr(obj, "__module__", None) or name).lstrip("_")
                if home.split(".")[0] != name.split(".")[0]:
                    continue  # imported from elsewhere (typing's re-exports): documented in another chapter
                text = first_sentence(inspect.getdoc(obj) or "")
                if len(text.split()) < 5 or text in seen or "(" in text.split()[0] or text.startswith(">>>"):
                    continue
                seen.add(text)
                out.append({"text": text, "label": label, "source": f"{name}.{attr}"})
    return out


def write_topics(path: Path) -> int:
    data = rows()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label", "source"])
        w.writeheader()
        w.writerows(data)
    return len(data)
