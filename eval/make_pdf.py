#!/usr/bin/env python3
"""Writes the eval's PDF documents from their plain-text sources, by hand, with the standard library.

Each source is eval/pdf/<institution>/<name>.txt and becomes eval/corpora/<institution>/<name>.pdf.
A source line starting with "# " is the title, "## " a section heading, "- " a list item (one line, a
paragraph of its own), a blank line ends a paragraph, and every other line is body text (reflowed
to the page width). The output is a plain
PDF 1.4 with uncompressed content streams and the standard Helvetica fonts (no embedded fonts, no
dates, no random ids), so the same source always gives the same bytes and any PDF text extractor
reads the words back in order.

    python3 eval/make_pdf.py          # write every PDF
    python3 eval/make_pdf.py --check  # fail if a committed PDF differs from its source
"""

import argparse
import sys
from pathlib import Path

EVAL = Path(__file__).resolve().parent
PAGE_W, PAGE_H = 595, 842  # A4 in points
MARGIN = 56
BODY, HEADING, TITLE = 10.5, 12.5, 15.0
LEADING = 1.35

# Helvetica advance widths (Adobe's AFM, 1/1000 em) for ASCII 32..126.
WIDTHS = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
]


def text_width(text, size, bold):
    """Width of `text` in points; bold is taken as 6% wider than regular (a safe upper bound)."""
    units = sum(WIDTHS[ord(c) - 32] for c in text)
    return units * size / 1000 * (1.06 if bold else 1.0)


def wrap(text, size, bold, width):
    """Greedy word wrap of one paragraph into lines no wider than `width` points."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and text_width(candidate, size, bold) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def blocks(source):
    """The source as (style, text) blocks: style is 'title', 'heading' or 'body' (an item is a body
    block of its own, starting with its dash)."""
    out, para = [], []
    for raw in source.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "- ")):
            if para:
                out.append(("body", " ".join(para)))
                para = []
        if line.startswith("## "):
            out.append(("heading", line[3:]))
        elif line.startswith("# "):
            out.append(("title", line[2:]))
        elif line.startswith("- "):
            out.append(("body", line))
        elif line:
            para.append(line)
    if para:
        out.append(("body", " ".join(para)))
    return out


def escape(text):
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def layout(source):
    """Content streams, one per page, placing every block's lines top to bottom."""
    width = PAGE_W - 2 * MARGIN
    pages, ops = [], []
    y = PAGE_H - MARGIN
    for style, text in blocks(source):
        size = {"title": TITLE, "heading": HEADING, "body": BODY}[style]
        bold = style != "body"
        font = "F2" if bold else "F1"
        lines = wrap(text, size, bold, width)
        gap_before = size * (1.0 if style != "body" else 0.3)
        needed = gap_before + size * LEADING * min(len(lines), 2)
        if style != "body":
            needed += BODY * LEADING * 2  # a heading never ends a page: two lines of text follow it
        if y - needed < MARGIN and ops:
            pages.append(ops)
            ops, y = [], PAGE_H - MARGIN
        elif ops:
            y -= gap_before
        for line in lines:
            if y - size * LEADING < MARGIN:
                pages.append(ops)
                ops, y = [], PAGE_H - MARGIN
            y -= size * LEADING
            ops.append(f"BT /{font} {size:g} Tf {MARGIN} {y:.2f} Td ({escape(line)}) Tj ET")
    if ops:
        pages.append(ops)
    return ["\n".join(page).encode("ascii") + b"\n" for page in pages]


def build_pdf(source, title):
    """The PDF's bytes: catalog, page tree, two fonts, the pages and their streams, info, xref."""
    streams = layout(source)
    n = len(streams)
    # Objects: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, 5 info, then page/stream pairs.
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        5: f"<< /Title ({escape(title)}) /Producer (eval/make_pdf.py) >>".encode("ascii"),
    }
    kids = []
    for i, stream in enumerate(streams):
        page_id, content_id = 6 + 2 * i, 7 + 2 * i
        kids.append(f"{page_id} 0 R")
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
            f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>"
        ).encode("ascii")
        objects[content_id] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode("ascii") + stream + b"endstream"
        )
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {n} >>".encode("ascii")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n".encode("ascii") + objects[num] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n".encode("ascii") + b"0000000000 65535 f \n"
    for num in range(1, size):
        out += f"{offsets[num]:010d} 00000 n \n".encode("ascii")
    out += f"trailer\n<< /Size {size} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode(
        "ascii"
    )
    return bytes(out)


def targets():
    """(source, output) pairs for every PDF source."""
    for src in sorted((EVAL / "pdf").glob("*/*.txt")):
        yield src, EVAL / "corpora" / src.parent.name / (src.stem + ".pdf")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    stale = []
    for src, out in targets():
        text = src.read_text(encoding="ascii")
        title = next((t for s, t in blocks(text) if s == "title"), src.stem)
        pdf = build_pdf(text, title)
        if args.check:
            if not out.is_file() or out.read_bytes() != pdf:
                stale.append(out)
        else:
            out.write_bytes(pdf)
            print(f"wrote {out.relative_to(EVAL.parent)} ({len(pdf)} bytes)")
    if stale:
        for out in stale:
            print(f"stale: {out.relative_to(EVAL.parent)} (run python3 eval/make_pdf.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
