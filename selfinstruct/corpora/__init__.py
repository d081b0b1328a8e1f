"""Real data that every fresh machine has, for the experiments and the worked examples: written from the
installed Python's standard library (PSF License), pinned by a digest. `stdlib_docs`: the docstrings of
named modules, the document set of the knowledge experiment; `stdlib_topics`: a labelled text dataset
(a docstring's first sentence -> its module's chapter of the Python Library Reference), the labelled
dataset of the FLAN-style templates example."""
