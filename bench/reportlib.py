"""What the benchmark report writers share (python3 standard library only):
the B_* environment, the per-run TSV, and the generated sections of
docs/BENCHMARKS.md, each between <!-- NAME --> and <!-- /NAME -->."""

import csv
import os
import re

NOTES_MARK = "<!-- notes -->"


def env(name):
    return os.environ.get(name, "")


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def section_re(name):
    """The section NAME of the document, markers included."""
    return re.compile(rf"<!-- {name} -->.*?<!-- /{name} -->", re.S)


def put_section(doc_path, name, text):
    """Replaces section NAME of the document with TEXT (which carries its
    markers); when there is none, inserts it before the notes (or at the
    end). Nothing else in the file changes; the write is atomic."""
    if os.path.exists(doc_path):
        doc = open(doc_path, encoding="utf-8").read()
    else:
        doc = "# Benchmarks\n\n"
    pattern = section_re(name)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text, doc, count=1)
    elif NOTES_MARK in doc:
        i = doc.index(NOTES_MARK)
        doc = doc[:i] + text + "\n\n" + doc[i:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    tmp = doc_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(doc)
    os.replace(tmp, doc_path)
