"""The README's table of contents lists its sections and subsections, in order, and every
in-page link (`](#...)`) leads to a heading."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    found, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"^(#{2,4}) (.+)$", line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def test_the_contents_list_every_section_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^( *)- \[(.+)\]\(#(.+)\)$", contents, re.MULTILINE)
    expected = [(level, h) for level, h in headings(text) if level <= 3 and h != "Contents"]
    got = [(2 + len(indent) // 2, title) for indent, title, _ in listed]
    assert got == expected, "run python scripts/update_readme_contents.py"
    assert all(target == anchor(title) for _, title, target in listed)


def test_every_in_page_link_leads_to_a_heading() -> None:
    text = README.read_text(encoding="utf-8")
    anchors = {anchor(h) for _, h in headings(text)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links
    assert links - anchors == set()
