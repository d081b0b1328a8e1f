"""The layers of the package, bottom to top (docs/ARCHITECTURE.md, "Layers"): a module imports from its own
layer and the layers below it, never from one above, and no import circle exists anywhere. Every import
counts: module-level ones, those inside functions and those under `if TYPE_CHECKING:`, since each of
them is a dependency the code has (a function-level import only delays it)."""
from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

# Bottom to top: (name, module prefixes). A prefix is a module and everything under it, except the top-level
# package, which is only itself (its __init__). docs/ARCHITECTURE.md ("Layers") lists the same, in this order.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["selfinstruct", "selfinstruct.io", "selfinstruct.corpora", "selfinstruct.entry_points",
                    "selfinstruct.fence", "selfinstruct.judgment", "selfinstruct.models", "selfinstruct.provenance"]),
    ("documents", ["selfinstruct.documents"]),
    ("constraints", ["selfinstruct.constraints"]),
    ("engines", ["selfinstruct.backends", "selfinstruct.dedup"]),
    ("run", ["selfinstruct.run"]),
    ("train", ["selfinstruct.train"]),
    ("evals", ["selfinstruct.evals"]),
    ("report", ["selfinstruct.report"]),
    ("browse", ["selfinstruct.browse"]),
    ("hub", ["selfinstruct.hub"]),
    ("generate", ["selfinstruct.generate"]),
    ("workflows", ["selfinstruct.workflows"]),
    ("cli", ["selfinstruct.cli"]),
]
PREFIXES = [prefixes for _, prefixes in LAYERS]

# Upward imports still there, each with why and what removes it. This list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under `root` by dotted name (a package's __init__ is the package)."""
    out = {}
    for f in sorted((root / package).rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _known(name: str, mods: dict[str, Path]) -> str | None:
    """The module that `name` (a module, or a name defined in one) comes from."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, mods: dict[str, Path]) -> list[tuple[str, int]]:
    """(module imported, line) for every import statement anywhere in the module's source."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [_known(a.name, mods) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, the module mod
            targets = [(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else _known(base, mods))
                       for a in node.names]
        else:
            continue
        out += [(t, node.lineno) for t in dict.fromkeys(targets) if t and t != name]
    return out


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The index of the layer whose longest prefix names the module: a prefix is a module and everything
    under it, except the top-level package, which is only itself (its __init__)."""
    best, found = -1, None
    for i, prefixes in enumerate(layers):
        for p in prefixes:
            if (module == p or ("." in p and module.startswith(p + "."))) and len(p) > best:
                best, found = len(p), i
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check(root: Path, package: str, layers: list[list[str]], known_upward: set[tuple[str, str]] = frozenset()
          ) -> list[str]:
    """Every violation, one line each: a module in no layer, an upward import, an import circle."""
    mods = modules(root, package)
    problems = []
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        mine = layer_of(name, layers)
        if mine is None:
            problems.append(f"{name}: in no layer (add it to LAYERS)")
            continue
        edges[name] = set()
        for target, line in imports(name, path, mods):
            edges[name].add(target)
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > mine and (name, target) not in known_upward:
                problems.append(f"{path.relative_to(root)}:{line}: {name} (layer {mine}) imports {target} "
                                f"(layer {theirs}, above it)")
    problems += [f"import circle: {' -> '.join(c)}" for c in cycles(edges)]
    return problems


def test_the_package_imports_downward_only_and_has_no_circle():
    assert check(ROOT, "selfinstruct", PREFIXES, KNOWN_UPWARD) == []


def test_known_upward_imports_are_still_there():
    """An entry of KNOWN_UPWARD that no longer happens is removed from the list (it only shrinks)."""
    mods = modules(ROOT, "selfinstruct")
    edges = {(n, t) for n, p in mods.items() for t, _ in imports(n, p, mods)}
    assert KNOWN_UPWARD <= edges


def test_the_architecture_page_lists_these_layers():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text("utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    assert rows[1:] == [name for name, _ in LAYERS]  # (the first row is the table's head)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / "pkg" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_the_check_fails_on_an_upward_import(tmp_path):
    """A synthetic package whose low layer imports the high one, inside a function and under TYPE_CHECKING."""
    root = _package(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/base.py": "def f():\n    from ..high import top\n    return top\n",
        "low/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high.top import T\n",
        "high/__init__.py": "",
        "high/top.py": "from ..low import base\nT = 1\n",
    })
    layers = [["pkg", "pkg.low"], ["pkg.high"]]
    problems = check(root, "pkg", layers)
    assert any("pkg.low.base (layer 0) imports pkg.high.top (layer 1" in p for p in problems), problems
    assert any("pkg.low.typed (layer 0) imports pkg.high.top" in p for p in problems), problems
    assert any(p.startswith("import circle: pkg.high.top -> pkg.low.base") for p in problems), problems
    assert check(root, "pkg", layers, {("pkg.low.base", "pkg.high.top"), ("pkg.low.typed", "pkg.high.top")}
                 ) == ["import circle: pkg.high.top -> pkg.low.base"]


def test_the_check_fails_on_a_circle_within_a_layer(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "import pkg.b\n",
        "b.py": "from . import c\n",
        "c.py": "def f():\n    from .a import x\n",
        "d.py": "from pkg import a\n",
    })
    assert check(root, "pkg", [["pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"]]) == [
        "import circle: pkg.a -> pkg.b -> pkg.c"]
    assert check(root, "pkg", [["pkg.a", "pkg.b", "pkg.c"]])[:2] == ["pkg: in no layer (add it to LAYERS)",
                                                                      "pkg.d: in no layer (add it to LAYERS)"]


def test_only_the_ray_package_names_ray():
    """Ray is one executor among those registered (`@register_executor`): the package `generate/ray/`
    imports it, registers itself through an entry point, and no other module imports either, or says
    `executor == "ray"`."""
    mods = modules(ROOT, "selfinstruct")
    inside = "selfinstruct.generate.ray"
    offenders = []
    for name, path in mods.items():
        if name == inside or name.startswith(inside + "."):
            continue
        text = path.read_text("utf-8")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ray" for a in node.names):
                offenders.append(f"{name}:{node.lineno} imports ray")
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "ray":
                offenders.append(f"{name}:{node.lineno} imports ray")
        offenders += [f"{name}:{target_line} imports {target}" for target, target_line in imports(name, path, mods)
                      if target == inside or target.startswith(inside + ".")]
        if '== "ray"' in text or "== 'ray'" in text:
            offenders.append(f"{name}: compares with \"ray\"")
    assert offenders == []
