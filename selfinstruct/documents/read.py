"""Reading one document into its text and its blocks (headings and paragraphs, with character spans
into that text). Markdown is parsed by markdown-it-py (CommonMark), HTML is converted to Markdown by
markdownify (BeautifulSoup) and parsed the same way, PDF text comes from pypdf, page by page; plain text
is split at blank lines. A file that cannot be used raises `Unreadable` with a short reason (a stage
writes it as a reject): empty, binary, not UTF-8, no text layer (a scanned PDF), a broken PDF."""
from __future__ import annotations

import glob
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html",
            ".htm": "html", ".pdf": "pdf"}


class Unreadable(Exception):
    """A document that gives no text: `reason` is a snake_case word, the message says why in words."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(detail)


@dataclass(frozen=True)
class Block:
    start: int  # character span in Document.text
    end: int
    heading: int = 0  # 1-6 for a heading of that level, 0 for body text


@dataclass
class Document:
    kind: str  # text | markdown | html | pdf
    text: str  # what chunks' spans index: the file's text (text, Markdown), or the text extracted from it
    blocks: list[Block] = field(default_factory=list)

    def heading_text(self, b: Block) -> str:
        return self.text[b.start:b.end].strip().lstrip("#").strip()


def find_documents(pattern: str | Path) -> tuple[Path, list[Path]]:
    """(root, files): every file of a supported type under a folder (recursively), or matching a glob
    (`docs/**/*.md`), or one file; sorted, so chunk ids are stable. Root: what paths are recorded against."""
    p = Path(pattern).expanduser()
    if p.is_dir():
        return p, sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
    if p.is_file():
        return p.parent, [p]
    files = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
    root = Path(glob.escape(str(p)).split("*")[0].split("?")[0].split("[")[0] or ".")
    return (root if root.is_dir() else root.parent), files


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_document(path: Path) -> Document:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise Unreadable("unsupported_type", f"not a supported type ({', '.join(sorted(SUFFIXES))})")
    data = path.read_bytes()
    if not data.strip():
        raise Unreadable("empty", "the file is empty" if not data else "the file holds only whitespace")
    if kind == "pdf":
        doc = _pdf(data)
    else:
        if b"\x00" in data[:8192]:
            raise Unreadable("binary", f"a binary file named {path.suffix} (it holds NUL bytes)")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise Unreadable("not_utf8", f"not UTF-8 text (byte {e.start})") from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if kind == "html":
            doc = Document("html", _markdown_blocks_text(_html_to_markdown(text)))
            doc.blocks = _markdown_blocks(doc.text)
        elif kind == "markdown":
            doc = Document("markdown", text, _markdown_blocks(text))
        else:
            doc = Document("text", text, _paragraphs(text, 0, len(text)))
    if not doc.text.strip() or not doc.blocks:
        raise Unreadable("no_text", "no text in it")
    return doc


def _paragraphs(text: str, start: int, end: int) -> list[Block]:
    """Body blocks of text[start:end], split at blank lines."""
    out, pos = [], start
    for m in re.finditer(r"\n[ \t]*\n", text[start:end]):
        if text[pos:start + m.start()].strip():
            out.append(Block(pos, start + m.start()))
        pos = start + m.end()
    if text[pos:end].strip():
        out.append(Block(pos, end))
    return out


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for m in re.finditer("\n", text):
        offsets.append(m.end())
    offsets.append(len(text))
    return offsets


def _markdown_blocks(text: str) -> list[Block]:
    """The top-level blocks markdown-it finds (headings, paragraphs, lists, code, tables...), by line span."""
    from markdown_it import MarkdownIt
    lines = _line_offsets(text)
    out = []
    for t in MarkdownIt("commonmark").enable("table").parse(text):
        if t.level != 0 or t.map is None or t.nesting == -1:
            continue
        a, b = t.map
        start, end = lines[min(a, len(lines) - 1)], lines[min(b, len(lines) - 1)]
        end = len(text[:end].rstrip("\n")) if end > start else end
        if not text[start:end].strip():
            continue
        level = int(t.tag[1]) if t.type == "heading_open" else 0
        out.append(Block(start, end, level))
    return out


def _html_to_markdown(html: str) -> str:
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["head", "script", "style", "noscript", "template", "svg", "nav", "footer"]):
        tag.decompose()  # not the document's text (a page's menus and footers neither)
    # ATX headings ("# ...") are what the Markdown pass reads as headings
    return MarkdownConverter(heading_style="ATX", strip=["img"]).convert_soup(soup)


def _markdown_blocks_text(md: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", md).strip() + "\n"


def _pdf(data: bytes) -> Document:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about odd files are not ours to print
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(p.extract_text() or "") for p in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise Unreadable("broken_pdf", f"pypdf cannot read it: {e}") from None
    if not any(p.strip() for p in pages):
        raise Unreadable("no_text", f"no text layer on its {len(pages)} page(s) (a scanned image? run OCR first)")
    text, blocks = "", []
    for page in pages:
        page = page.replace("\r\n", "\n").strip()
        if not page:
            continue
        start = len(text)
        text += page + "\n\n"
        blocks += _paragraphs(text, start, len(text))
    return Document("pdf", text, blocks)
