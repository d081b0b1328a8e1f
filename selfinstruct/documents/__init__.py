"""A user's own documents as training material: reading them (`read.py`: text, Markdown, HTML, PDF, each
with a well-kept parser), cutting them into chunks at headings and paragraphs under a token budget
(`chunk.py`), and checking that an answer is supported by its chunk (`support.py`). The standard library
and the parsers only: the `documents` stage (generate/) and the raw-text sources of `finetune`
mixtures (train/) both use it."""
from .chunk import Chunk, chunk_blocks, chunk_document
from .read import SUFFIXES, Block, Document, Unreadable, find_documents, read_document
from .support import Support, support

__all__ = ["Block", "Chunk", "Document", "SUFFIXES", "Support", "Unreadable", "chunk_blocks", "chunk_document",
           "find_documents", "read_document", "support"]
