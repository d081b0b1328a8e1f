"""A Datasette plugin (this module, registered once): the metadata of each app this process serves, set
by `serve.refresh` and replaced after each refresh of the database."""
from __future__ import annotations

import sys
import weakref
from typing import Any

from datasette import hookimpl

LIVE: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


@hookimpl
def get_metadata(datasette, key, database, table):  # noqa: ARG001 (the hook's signature)
    return LIVE.get(datasette)


def register() -> None:
    from datasette.plugins import pm

    module = sys.modules[__name__]
    if not pm.is_registered(module):
        pm.register(module, name="selfinstruct-browse")
