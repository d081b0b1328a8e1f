"""The built-in training constraint types, one module per family; importing this package registers them
(`constraints.plugins` does, before it loads the types other packages name in their entry points)."""
# in the order `selfinstruct constraints` lists them
from . import sentences, positions, punctuation, words, counting, formats  # noqa: F401,I001  (each registers its types)
