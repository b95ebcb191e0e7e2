"""Read a rendered page the way a person does: one element by id, its visible text."""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Finder(HTMLParser):
    def __init__(self, element_id: str):
        super().__init__(convert_charrefs=False)
        self.element_id = element_id
        self.start = self.end = None
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        if self.end is not None:
            return
        if self.start is None:
            if dict(attrs).get("id") == self.element_id:
                self.start = self._offset()
                self.depth = 0 if tag in VOID else 1
        elif tag not in VOID:
            self.depth += 1

    def handle_startendtag(self, tag, attrs):
        if self.start is None and dict(attrs).get("id") == self.element_id:
            self.start = self._offset()
            self.end = self.start

    def handle_endtag(self, tag):
        if self.start is not None and self.end is None and tag not in VOID:
            self.depth -= 1
            if self.depth == 0:
                self.end = self._offset()

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_offsets[line - 1] + col


def element(page: str, element_id: str) -> str:
    """The HTML of the element with this id (raises AssertionError when there is none)."""
    finder = _Finder(element_id)
    finder.line_offsets = [0]
    for line in page.splitlines(keepends=True):
        finder.line_offsets.append(finder.line_offsets[-1] + len(line))
    finder.feed(page)
    assert finder.start is not None, f"no element with id={element_id!r}"
    end = page.index(">", finder.end) + 1 if finder.end is not None else len(page)
    return page[finder.start : end]


def text(fragment: str) -> str:
    """Visible text: tags and SVG tooltips removed, entities decoded, whitespace collapsed."""
    fragment = re.sub(r"<title>.*?</title>", " ", fragment, flags=re.S)
    fragment = re.sub(r"<[^>]+>", " ", fragment)
    flat = re.sub(r"\s+", " ", html_lib.unescape(fragment)).strip()
    return re.sub(r" ([.,;:!?])(?=\s|$)", r"\1", flat)  # "in <b>sandbox</b>." reads "in sandbox."


def page_of(response) -> str:
    return response.content.decode()
