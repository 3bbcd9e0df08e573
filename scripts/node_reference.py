"""Write docs/nodes.md, the node reference, and the README's node table from the nodes themselves.

    python scripts/node_reference.py            # rewrite docs/nodes.md and the README's table
    python scripts/node_reference.py --check    # exit 1 if either is stale

Needs the flenwheel package importable (``pip install -e .``) with every optional dependency, so
that no node module is left out of the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flenwheel.comfy_tools.dev.node_reference import render, with_summary
from flenwheel.core.data.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "nodes.md"
README = ROOT / "README.md"


def sync(path: Path, text: str, check: bool) -> bool:
    """Write ``text`` to ``path`` unless it is already there (or only check); True when up to date."""
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if check:
        print(f"{path} is {'up to date' if current == text else 'stale'}")
    elif current != text:
        atomic_write_text(path, text)
        print(f"{path} written")
    return current == text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the file is up to date")
    parser.add_argument("-o", "--output", type=Path, default=TARGET, help="file to write")
    args = parser.parse_args()
    fresh = [sync(args.output, render(), args.check),
             sync(README, with_summary(README.read_text(encoding="utf-8")), args.check)]
    return 0 if all(fresh) or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
