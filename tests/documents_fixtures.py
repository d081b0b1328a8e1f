"""Small real documents of every supported type, and the files a documents run must reject, written
into a folder at test time (the PDFs by fpdf2, a well-kept PDF writer: one with a text layer, one that is
a scanned image only)."""
from __future__ import annotations

from pathlib import Path

GUIDE_MD = """# Widget Guide

The Widget 3000 is a kitchen appliance made by Acme. It blends, chops and heats food.

## Safety

Never open the lid while the blades turn. Unplug the Widget before cleaning the blades.

## Cleaning

Rinse the jar with warm water after each use. The jar is dishwasher safe; the base is not.
"""
RETURNS_HTML = ("<html><head><title>Returns</title><style>p {color: red}</style></head><body>"
                "<h1>Returns</h1><p>Acme accepts returns within 30 days of purchase.</p>"
                "<h2>Refunds</h2><p>Refunds go to the original card within 5 business days.</p>"
                "<script>var tracking = 1;</script></body></html>")
WARRANTY_TXT = "Warranty terms.\n\nThe warranty covers the motor for two years.\n\nIt does not cover the glass jar.\n"
PDF_LINES = ["Service centres", "The service centre in Lyon repairs motors in three days.",
             "Send the base only; keep the jar at home."]


def text_pdf(path: Path) -> None:
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    for line in PDF_LINES:
        pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    pdf.output(str(path))


def scanned_pdf(path: Path) -> None:
    """A page that is one image (a scan): no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw
    img = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(img).text((10, 40), "Scanned page: warranty card", fill="black")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=10, y=10, w=180)
    pdf.output(str(path))


def write_documents(d: Path, bad: bool = True) -> Path:
    """The good documents (and, with `bad`, the ones a run must reject) in folder d."""
    (d / "sub").mkdir(parents=True, exist_ok=True)
    (d / "guide.md").write_text(GUIDE_MD)
    (d / "sub" / "returns.html").write_text(RETURNS_HTML)
    (d / "warranty.txt").write_text(WARRANTY_TXT)
    text_pdf(d / "service.pdf")
    (d / "notes.csv").write_text("not,a,document\n")  # not a supported type: not read at all
    if bad:
        (d / "empty.txt").write_bytes(b"")
        (d / "binary.txt").write_bytes(bytes(range(256)) * 4)
        (d / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
        (d / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf body\n")
        scanned_pdf(d / "scanned.pdf")
    return d


BAD = {"empty.txt": "empty", "binary.txt": "binary", "latin1.txt": "not_utf8", "broken.pdf": "broken_pdf",
       "scanned.pdf": "no_text"}
