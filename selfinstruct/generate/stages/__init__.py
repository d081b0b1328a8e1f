"""The built-in stages; importing this package registers them (generate/plugins.py imports it)."""
from . import (alpaca, bootstrap, classify, decontaminate, export, filter, instances, judge, pairs,  # noqa: F401
               responses, select)
