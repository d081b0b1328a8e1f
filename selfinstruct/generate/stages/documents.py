"""A source stage: the user's own documents (a folder, a glob or one file of plain text, Markdown, HTML
or PDF; `documents/read.py`) cut into chunks at headings and paragraphs under a token budget counted
with the tokenizer of the model that will read them (`documents/chunk.py`). One record per chunk: its
text and where it came from (`chunk`: path, sha256, character span, heading path, tokens).

It reads its own input: one row per file (sorted), so a batch is a group of files and a resumed run
goes on at the next file. A file that gives no text (empty, binary, not UTF-8, a scanned PDF with no
text layer, a broken PDF) is a reject with its reason, never a traceback. The path and sha256 of every
file key the stage hash (`input_digest`): a changed, added or removed document is noticed on resume."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ...backends.base import Completion
from ...documents import Unreadable, chunk_document, find_documents, read_document
from ...documents.read import sha256
from ...io.errors import UserError
from ...io.hashing import stable_hash
from ...io.records import Record, Reject
from ...io.settings import setting
from ..registry import register_stage
from ..stage import BatchStage, SourceRecords, StageResult


WORDS = "words"


@dataclass
class DocumentsConfig:
    path: str | None = setting(None, help="the documents: a folder (every .txt, .md, .html, .htm and .pdf under "
                                          "it), a glob (docs/**/*.md) or one file")
    max_tokens: int = setting(512, min=16, max=32768, help="token budget of a chunk (the tokenizer of `tokenizer`)")
    overlap: int = setting(0, min=0, help="tokens a chunk may repeat from the end of the one before (same section)")
    min_tokens: int = setting(0, min=0, help="a heading starts a new chunk only once the chunk holds this many "
                                             "tokens (0: at every heading); small sections are merged")
    tokenizer: str | None = setting(None, help="whose tokenizer counts the tokens (default: the pipeline's model; "
                                               "`words`: whitespace-separated words, for a model with no tokenizer "
                                               "at hand)")
    private: bool = setting(True, help="the documents are private: the dataset card says so and lists the files, "
                                       "so a run is not published by accident")
    batch_size: int = setting(16, min=1, help="files per shard")

    def check(self, err) -> None:
        if self.overlap >= self.max_tokens:
            err("overlap", f"must be below max_tokens ({self.max_tokens})")
        if self.min_tokens > self.max_tokens:
            err("min_tokens", f"must be at most max_tokens ({self.max_tokens})")


def document_files(cfg: DocumentsConfig) -> tuple[Path, list[Path]]:
    if not cfg.path:
        raise UserError("documents.path is not set: name a folder, glob or file of documents "
                        "(--set documents.path=DIR)")
    root, files = find_documents(cfg.path)
    if not files:
        raise UserError("no documents found (.txt, .md, .html, .htm, .pdf)", path=cfg.path)
    return root, files


@register_stage
class Documents(BatchStage):
    name = "documents"
    Config = DocumentsConfig
    writes = frozenset({"chunk"})
    source = True
    order = 10

    @classmethod
    def input_digest(cls, cfg: DocumentsConfig) -> str:
        root, files = document_files(cfg)
        return stable_hash([[str(f.relative_to(root)), sha256(f)] for f in files])

    @cached_property
    def files(self) -> tuple[Path, list[Path]]:
        """The root and the files, found once (each batch of files is read relative to the root)."""
        return document_files(self.cfg)

    def input(self, inputs) -> SourceRecords:
        root, files = self.files
        return SourceRecords([Record(id=f"doc{i:05d}", instruction="", extra={"file": str(f.relative_to(root))})
                              for i, f in enumerate(files)])

    @cached_property
    def count(self):
        if self.cfg.tokenizer == WORDS:
            return lambda text: len(text.split())
        from transformers import AutoTokenizer

        from ...models import resolve_model
        tok = AutoTokenizer.from_pretrained(resolve_model(self.cfg.tokenizer or self.ctx.cfg.model))
        return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out = StageResult()
        root, _ = self.files
        out.counts.add("inputs", len(batch))  # files read: this stage makes chunks of them
        for r in batch:
            rel = r.extra["file"]
            path = root / rel
            try:
                doc = read_document(path)
            except Unreadable as e:
                out.reject(Reject(r.id, e.reason, detail=e.detail, fields={"path": rel}))
                continue
            except OSError as e:
                out.reject(Reject(r.id, "unreadable", detail=str(e.strerror or e), fields={"path": rel}))
                continue
            digest = sha256(path)
            chunks = chunk_document(doc, self.count, self.cfg.max_tokens, self.cfg.overlap, self.cfg.min_tokens)
            out.counts.add("documents")
            out.counts.add(f"kind:{doc.kind}")
            out.counts.add("chunks", len(chunks))
            out.counts.add("tokens", sum(c.tokens for c in chunks))
            for k, c in enumerate(chunks):
                out.keep(Record(id=f"{r.id}-{k:04d}", instruction="", extra={"chunk": {
                    "text": doc.text[c.start:c.end], "path": rel, "sha256": digest, "kind": doc.kind,
                    "span": [c.start, c.end], "headings": list(c.headings), "tokens": c.tokens}}))
        return out
