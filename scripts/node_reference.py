"""Write docs/nodes.md, the node reference, from the nodes' own descriptions and tooltips.

    python scripts/node_reference.py            # rewrite docs/nodes.md
    python scripts/node_reference.py --check    # exit 1 if docs/nodes.md is stale

Needs the flenwheel package importable (``pip install -e .``) with every optional dependency, so
that no node module is left out of the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flenwheel.core.atomic import atomic_write_text
from flenwheel.core.node_reference import render

TARGET = Path(__file__).resolve().parent.parent / "docs" / "nodes.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the file is up to date")
    parser.add_argument("-o", "--output", type=Path, default=TARGET, help="file to write")
    args = parser.parse_args()
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        print(f"{args.output} is {'up to date' if current == text else 'stale'}")
        return 0 if current == text else 1
    if current != text:
        atomic_write_text(args.output, text)
    print(f"{args.output} {'unchanged' if current == text else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
