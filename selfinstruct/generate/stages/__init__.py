"""The built-in stages; importing this package registers them (see generate/registry.py)."""
from . import alpaca, bootstrap, classify, export, filter, instances, judge, pairs, responses, select  # noqa: F401
