"""Rewrite the README's generated sections: the memory tables (from the registry) and the command list (from the CLI).

    python scripts/readme_sections.py            # rewrite the sections that changed
    python scripts/readme_sections.py --check    # exit 1 if any is stale

Each section sits between ``<!-- NAME:start ... -->`` and ``<!-- NAME:end -->``; tests compare the
README's copy with a fresh rendering, so a table cannot disagree with the code it describes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flenwheel.cli import cli
from flenwheel.cli._command_list import command_table
from flenwheel.core.data.atomic import atomic_write_text
from flenwheel.core.turn.presets import memory_table, preset_table

README = Path(__file__).resolve().parent.parent / "README.md"


def sections() -> dict[str, str]:
    """Each generated section's name and its current text."""
    return {"memory-table": memory_table(), "preset-table": preset_table(), "command-list": command_table(cli)}


def replaced(readme: str, name: str, text: str) -> str:
    """``readme`` with the block ``name`` holding ``text``; a missing block is an error naming it."""
    start, end = f"<!-- {name}:start", f"<!-- {name}:end -->"
    first, last = readme.find(start), readme.find(end)
    if first < 0 or last < first:
        raise SystemExit(f"README has no {start} ... {end} block")
    header_end = readme.index("-->", first) + len("-->\n")
    return readme[:header_end] + text + readme[last:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the README is up to date")
    args = parser.parse_args()
    current = README.read_text(encoding="utf-8")
    fresh = current
    for name, text in sections().items():
        fresh = replaced(fresh, name, text)
    if args.check or fresh == current:
        print(f"{README} is {'up to date' if fresh == current else 'stale'}")
        return 0 if fresh == current else 1
    atomic_write_text(README, fresh)
    print(f"{README} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
