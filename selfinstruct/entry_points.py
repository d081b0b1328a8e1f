"""Plugins: another package names modules in an entry-point group (`selfinstruct.stages`, `.backends`,
`.executors`, `.constraints`); importing such a module runs its `@register_...` decorator. Each group is
loaded once, on the first lookup of its registry."""
from __future__ import annotations

from importlib.metadata import entry_points

_loaded: set[str] = set()


def load_group(group: str) -> None:
    """Import every module the installed packages name in `group` (once per process)."""
    if group not in _loaded:
        _loaded.add(group)
        for ep in entry_points(group=group):
            ep.load()
