"""The built-in stages; importing this package registers them (generate/plugins.py imports it)."""
from . import (alpaca, answer, bootstrap, classify, constrain, decontaminate, documents, export,  # noqa: F401
               faithfulness, filter, grounded, instances, judge, pairs, responses, select, templates, verify)
