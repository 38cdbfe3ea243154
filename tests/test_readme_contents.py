"""The README's table of contents lists its sections and subsections, in order, and every
link between the README and the documentation in docs/ leads to a file and a heading that
exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 350  # the guide goes on in docs/


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    found, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"^(#{1,4}) (.+)$", line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def test_the_contents_list_every_section_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^( *)- \[(.+)\]\(#(.+)\)$", contents, re.MULTILINE)
    expected = [(level, h) for level, h in headings(text) if 2 <= level <= 3]
    expected = [item for item in expected if item[1] != "Contents"]
    got = [(2 + len(indent) // 2, title) for indent, title, _ in listed]
    assert got == expected, "run python scripts/update_readme_contents.py"
    assert all(target == anchor(title) for _, title, target in listed)


def test_the_readme_is_short_and_links_every_page_of_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < MAX_README_LINES
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in text, f"the README does not link docs/{page.name}"


def test_every_link_between_the_pages_leads_to_a_heading() -> None:
    checked = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, fragment = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.name} links {target}: no such file"
            if fragment and dest.suffix == ".md":
                anchors = {anchor(h) for _, h in headings(dest.read_text(encoding="utf-8"))}
                assert fragment in anchors, f"{page.name} links {target}: no such heading"
            checked += 1
    assert checked > 20
