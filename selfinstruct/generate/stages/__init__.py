"""The built-in stages; importing this package registers them (generate/plugins.py imports it)."""
from . import (alpaca, bootstrap, classify, constrain, decontaminate, export, filter, instances, judge,  # noqa: F401
               pairs, responses, select, verify)
