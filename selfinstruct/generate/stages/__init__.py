"""The built-in stages; importing this package registers them (generate/plugins.py imports it)."""
from . import alpaca, bootstrap, classify, export, filter, instances, judge, pairs, responses, select  # noqa: F401
