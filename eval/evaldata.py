"""The eval's data and its rules, shared by check_data.py and run.py (standard library only).

Layout, relative to this folder:

    institutions.json              one entry per institution: corpus, specialist, code words, folders
    questions.jsonl                one question per line
    corpora/<institution>/         the public documents (added to the corpus at clearance 0)
    restricted/<institution>/      the confidential documents (added at the institution's clearance)

A document's id is its path relative to the folder that is added (`sov corpus add NAME FOLDER/`),
so `corpora/hollowmere/annual-leave-policy.md` is `annual-leave-policy.md` in corpus `hollowmere`.
"""

import html.parser
import json
import re
import unicodedata
from pathlib import Path

EVAL = Path(__file__).resolve().parent
FORMATS = (".md", ".html", ".txt", ".pdf")


def normalise(text):
    """Lower case, whitespace collapsed, punctuation turned into spaces.

    Kept: a `.` or `:` between two digits (4.6, 17:45), so "0.4%" never matches "4%".
    Rewritten: `%` and "per cent" as "percent", thousands separators dropped (2,400 -> 2400),
    "5pm"/"5 p.m." as "5 pm".
    """
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("%", " percent ")
    t = re.sub(r"\bper\s+cent\b", "percent", t)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)
    t = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", t)
    t = re.sub(r"[^\w\s.:]|_|(?<!\d)[.:]|[.:](?!\d)", " ", t)
    t = re.sub(r"(\d)([ap]m)\b", r"\1 \2", t)
    return " ".join(t.split())


def matches(text, accept):
    """The first accepted string found in `text` as whole words after normalising, or None."""
    padded = f" {normalise(text)} "
    for candidate in accept:
        n = normalise(candidate)
        if n and f" {n} " in padded:
            return candidate
    return None


class _HtmlText(html.parser.HTMLParser):
    """The visible text of an HTML page (entities decoded, script and style left out)."""

    BLOCKS = {"p", "h1", "h2", "h3", "h4", "li", "tr", "td", "th", "br", "div", "section", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(source):
    parser = _HtmlText()
    parser.feed(source)
    parser.close()
    return "".join(parser.parts)


def pdf_text(data):
    """The text of a PDF written by make_pdf.py: its `(...) Tj` strings, one line each.

    Only uncompressed content streams are read, which is all make_pdf.py writes.
    """
    lines = []
    for m in re.finditer(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", data):
        raw = re.sub(rb"\\(.)", rb"\1", m.group(1))
        lines.append(raw.decode("latin-1"))
    return "\n".join(lines)


def document_text(path):
    """A document's text as a reader (or an ingester) sees it."""
    if path.suffix == ".pdf":
        return pdf_text(path.read_bytes())
    text = path.read_text(encoding="utf-8")
    return html_text(text) if path.suffix == ".html" else text


def load_institutions():
    with open(EVAL / "institutions.json", encoding="utf-8") as f:
        return json.load(f)


def load_questions(path=None):
    """The questions, in file order; raises ValueError naming the line of a bad one."""
    path = Path(path) if path else EVAL / "questions.jsonl"
    questions = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                questions.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path.name}:{number}: not JSON: {e}") from e
    return questions


def documents(institution):
    """{doc id: (path, restricted)} for one institution's entry in institutions.json."""
    docs = {}
    for key, restricted in (("public", False), ("restricted", True)):
        folder = EVAL / institution[key]
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in FORMATS:
                doc_id = path.relative_to(folder).as_posix()
                if doc_id in docs:
                    raise ValueError(f"document id {doc_id} is both public and restricted")
                docs[doc_id] = (path, restricted)
    return docs


def same_document(cited, expected):
    """Whether a citation's document id names the expected one (exactly, or as a path ending in it)."""
    return isinstance(cited, str) and (cited == expected or cited.endswith("/" + expected))


def code_word_stems(code_words):
    """The code words and their letter stems ("AMBERWICK-7" -> "amberwick"): a leak is either."""
    stems = []
    for word in code_words:
        stems.append(normalise(word))
        letters = re.match(r"[A-Za-z]+", word)
        if letters and len(letters.group(0)) >= 6:
            stems.append(letters.group(0).lower())
    return stems


def leaks(text, code_words):
    """The code words (or stems) that occur in `text`, case-insensitively."""
    low = text.lower()
    norm = f" {normalise(text)} "
    return [s for s in code_word_stems(code_words) if s in low or f" {s} " in norm]
