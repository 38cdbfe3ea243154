"""Rewrite the README's "Contents" list from its ## and ### headings (tests/test_readme_
contents.py checks that it is current): `python scripts/update_readme_contents.py`."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def main() -> None:
    text = README.read_text(encoding="utf-8")
    entries, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"^(##|###) (.+)$", line)):
            level, title = len(match.group(1)), match.group(2)
            if title != "Contents":
                entries.append(f"{'  ' * (level - 2)}- [{title}](#{anchor(title)})")
    block = "## Contents\n\n" + "\n".join(entries) + "\n\n"
    start = text.index("## Contents\n")
    end = text.index("\n## ", start + 1) + 1
    README.write_text(text[:start] + block + text[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
