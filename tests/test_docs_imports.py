"""Every ``from flenwheel... import ...`` a doc shows must work, so the Python examples cannot rot."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1]
DOCS = sorted([PACK / "README.md", *(PACK / "docs").glob("*.md")])
IMPORT = re.compile(r"^\s*(from flenwheel[\w.]* import [^\n#]+|import flenwheel[\w.]*)", re.M)


def _statements() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for match in IMPORT.finditer(doc.read_text(encoding="utf-8")):
            found.append((doc.name, match.group(1).strip().rstrip("\\").strip()))
    return found


STATEMENTS = _statements()


def test_the_docs_show_python_imports():
    assert len(STATEMENTS) >= 20


@pytest.mark.parametrize(("doc", "statement"), STATEMENTS, ids=[f"{d}:{s[:60]}" for d, s in STATEMENTS])
def test_doc_import_works(doc, statement):
    node = ast.parse(statement).body[0]
    if isinstance(node, ast.Import):
        importlib.import_module(node.names[0].name)
        return
    module = importlib.import_module(node.module)
    missing = [a.name for a in node.names if not hasattr(module, a.name)
               and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not missing, f"{doc}: {node.module} has no {missing}"
