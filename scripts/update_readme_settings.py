"""Regenerate the settings table in docs/settings.md from `target-azure-eventhubs --about`.

    .venv/bin/python scripts/update_readme_settings.py          # rewrite docs/settings.md
    .venv/bin/python scripts/update_readme_settings.py --check  # exit 1 if out of date

The table is the one `target-azure-eventhubs --about --format=markdown` prints under
"## Settings"; it goes between the `<!-- settings-table:start -->` and
`<!-- settings-table:end -->` markers. tests/test_readme.py fails when they differ.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "docs" / "settings.md"
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def about_command() -> list[str]:
    """The target's CLI next to this interpreter (a venv), else on PATH, else `-m`."""
    beside = Path(sys.executable).parent / "target-azure-eventhubs"
    if beside.exists():
        return [str(beside)]
    if found := shutil.which("target-azure-eventhubs"):
        return [found]
    return [sys.executable, "-m", "target_azure_eventhubs.target"]


def about_output(format_: str) -> str:
    """What `target-azure-eventhubs --about --format=FORMAT` prints."""
    return subprocess.run(
        [*about_command(), "--about", f"--format={format_}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def settings_table() -> str:
    """The markdown settings table of `--about --format=markdown`, as printed."""
    lines = about_output("markdown").splitlines()
    start = lines.index("## Settings") + 1
    table = []
    for line in lines[start:]:
        if line.startswith("|"):
            table.append(line.rstrip())
        elif table:
            break
    if not table:
        raise SystemExit("no settings table in `--about --format=markdown` output")
    return "\n".join(table)


def replace_table(readme: str, table: str) -> str:
    head, sep, rest = readme.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"docs/settings.md lacks the {START} ... {END} markers")
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args()
    current = README.read_text(encoding="utf-8")
    updated = replace_table(current, settings_table())
    if updated == current:
        print("docs/settings.md settings table is up to date")
        return 0
    if args.check:
        print(
            "docs/settings.md settings table is out of date: run scripts/update_readme_settings.py"
        )
        return 1
    README.write_text(updated, encoding="utf-8")
    print("docs/settings.md settings table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
