#!/usr/bin/env python3
"""Checks the eval's data: documents, questions and code words. Standard library only.

    python3 eval/check_data.py

Prints one line per problem and exits 1 if there is any, else prints the counts and exits 0.
What it checks:
- each institution has at least 4 documents, among them an HTML page, a plain text file and a
  confidential document; every document is 400 to 1500 words and has at least two headings;
- the PDFs are exactly what make_pdf.py writes from their sources;
- every question has its fields with the right types, a unique id, a known institution and its
  corpus, a document that exists in that institution, an accepted string that occurs in that
  document (after normalising), no accepted string already in the question, the institution's
  name in the question (for the `auto` router), and the clearance of its document (the
  institution's level for a confidential one, 0 otherwise);
- at least 40 questions, at least 20 per institution and 2 per confidential document;
- each code word occurs in its institution's confidential documents and in no other document.
"""

import re
import sys
from collections import Counter

import evaldata
import make_pdf

FIELDS = {
    "id": str,
    "institution": str,
    "corpus": str,
    "kind": str,
    "question": str,
    "answer": str,
    "accept": list,
    "document": str,
    "clearance": int,
}
KINDS = {"lookup", "synonym", "near-duplicate", "confidential"}


def headings(path, text):
    """How many headings a document has, by its format's own markup."""
    if path.suffix == ".md":
        return sum(1 for line in text.splitlines() if re.match(r"#{1,4} \S", line))
    if path.suffix == ".html":
        return len(re.findall(r"<h[1-4][ >]", path.read_text(encoding="utf-8")))
    if path.suffix == ".pdf":
        src = evaldata.EVAL / "pdf" / path.parent.name / (path.stem + ".txt")
        return sum(1 for line in src.read_text(encoding="ascii").splitlines() if line.startswith("#"))
    # Plain text: a heading is a line in capitals of at least two words.
    return sum(1 for line in text.splitlines() if re.fullmatch(r"[A-Z0-9 .:,&()-]{6,}", line.strip()) and " " in line.strip())


def check_documents(institutions, problems):
    texts = {}
    for key, inst in institutions.items():
        try:
            docs = evaldata.documents(inst)
        except ValueError as e:
            problems.append(f"{key}: {e}")
            continue
        suffixes = Counter(path.suffix for path, _ in docs.values())
        if len(docs) < 4:
            problems.append(f"{key}: {len(docs)} documents, want at least 4")
        for fmt in (".html", ".txt"):
            if not suffixes[fmt]:
                problems.append(f"{key}: no {fmt} document")
        if not any(restricted for _, restricted in docs.values()):
            problems.append(f"{key}: no confidential document in {inst['restricted']}/")
        for doc_id, (path, restricted) in docs.items():
            text = evaldata.document_text(path)
            texts[(key, doc_id)] = (text, restricted)
            words = len(text.split())
            if not 400 <= words <= 1500:
                problems.append(f"{key}/{doc_id}: {words} words, want 400 to 1500")
            if headings(path, text) < 2:
                problems.append(f"{key}/{doc_id}: fewer than two headings")
    for src, out in make_pdf.targets():
        text = src.read_text(encoding="ascii")
        title = next((t for s, t in make_pdf.blocks(text) if s == "title"), src.stem)
        if not out.is_file() or out.read_bytes() != make_pdf.build_pdf(text, title):
            problems.append(f"{out.relative_to(evaldata.EVAL)}: stale (run python3 eval/make_pdf.py)")
    return texts


def check_questions(institutions, questions, texts, problems):
    ids = Counter(q.get("id") for q in questions)
    for qid, n in ids.items():
        if n > 1:
            problems.append(f"question id {qid} is used {n} times")
    for q in questions:
        qid = q.get("id", "?")
        bad = [f for f, t in FIELDS.items() if not isinstance(q.get(f), t) or isinstance(q.get(f), bool)]
        if bad:
            problems.append(f"{qid}: missing or mistyped fields: {', '.join(bad)}")
            continue
        if set(q) - set(FIELDS):
            problems.append(f"{qid}: unknown fields: {', '.join(sorted(set(q) - set(FIELDS)))}")
        if q["kind"] not in KINDS:
            problems.append(f"{qid}: kind {q['kind']!r} is not one of {sorted(KINDS)}")
        inst = institutions.get(q["institution"])
        if inst is None:
            problems.append(f"{qid}: unknown institution {q['institution']!r}")
            continue
        if q["corpus"] != inst["corpus"]:
            problems.append(f"{qid}: corpus {q['corpus']!r}, but {q['institution']}'s is {inst['corpus']!r}")
        doc = texts.get((q["institution"], q["document"]))
        if doc is None:
            problems.append(f"{qid}: document {q['document']!r} is not in {q['institution']}")
            continue
        text, restricted = doc
        if not q["accept"] or not all(isinstance(a, str) and evaldata.normalise(a) for a in q["accept"]):
            problems.append(f"{qid}: accept must be a non-empty list of non-empty strings")
            continue
        if evaldata.matches(text, q["accept"]) is None:
            problems.append(f"{qid}: no accepted string occurs in {q['document']}")
        if evaldata.matches(q["answer"], q["accept"]) is None:
            problems.append(f"{qid}: the canonical answer {q['answer']!r} is not itself accepted")
        echoed = evaldata.matches(q["question"], q["accept"])
        if echoed is not None:
            problems.append(f"{qid}: the question already contains the accepted {echoed!r}")
        if q["institution"].lower() not in q["question"].lower():
            problems.append(f"{qid}: the question does not name {q['institution']} (the auto router needs it)")
        want = inst["restricted_clearance"] if restricted else 0
        if q["clearance"] != want:
            problems.append(f"{qid}: clearance {q['clearance']}, but {q['document']} needs {want}")
        if (q["kind"] == "confidential") != restricted:
            problems.append(f"{qid}: kind 'confidential' is for questions on a confidential document only")
    per_inst = Counter(q.get("institution") for q in questions)
    if len(questions) < 40:
        problems.append(f"{len(questions)} questions, want at least 40")
    for key in institutions:
        if per_inst[key] < 20:
            problems.append(f"{key}: {per_inst[key]} questions, want at least 20")
    per_doc = Counter((q.get("institution"), q.get("document")) for q in questions)
    for (key, doc_id), (_, restricted) in texts.items():
        if restricted and per_doc[(key, doc_id)] < 2:
            problems.append(f"{key}/{doc_id}: confidential, but only {per_doc[(key, doc_id)]} questions")
        if not restricted and per_doc[(key, doc_id)] == 0:
            problems.append(f"{key}/{doc_id}: no question about it")
    return per_inst


def check_code_words(institutions, texts, problems):
    for key, inst in institutions.items():
        if not inst["code_words"]:
            problems.append(f"{key}: no code word")
        for word in inst["code_words"]:
            for (owner, doc_id), (text, restricted) in texts.items():
                found = evaldata.leaks(text, [word])
                mine = owner == key and restricted
                if mine and evaldata.normalise(word) not in found:
                    problems.append(f"{key}: code word {word} is missing from confidential {doc_id}")
                if not mine and found:
                    problems.append(f"{key}: code word {word} ({found[0]}) occurs in {owner}/{doc_id}")


def main():
    problems = []
    institutions = evaldata.load_institutions()
    try:
        questions = evaldata.load_questions()
    except ValueError as e:
        print(e)
        return 1
    texts = check_documents(institutions, problems)
    per_inst = check_questions(institutions, questions, texts, problems)
    check_code_words(institutions, texts, problems)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problems")
        return 1
    kinds = Counter(q["kind"] for q in questions)
    print(f"ok: {len(texts)} documents, {len(questions)} questions")
    for key, inst in institutions.items():
        n_docs = sum(1 for owner, _ in texts if owner == key)
        words = sum(len(t.split()) for (owner, _), (t, _) in texts.items() if owner == key)
        conf = sum(1 for q in questions if q["institution"] == key and q["clearance"] > 0)
        print(f"  {key}: {n_docs} documents ({words} words), {per_inst[key]} questions ({conf} confidential)")
    print("  kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
