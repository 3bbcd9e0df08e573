"""The house rules of DESIGN.md §1, read from the source: who may import whom.

Every import counts, including the lazy ones inside functions, because a lazy import is still a
dependency a maintainer has to know about.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1]
ROOMS = ("cli", "comfy_tools", "core", "nodes", "trainers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACK).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["flenwheel", *parts])


def _package_of(path: Path) -> list[str]:
    name = _module_name(path).split(".")
    return name if path.name == "__init__.py" else name[:-1]


def _imports(path: Path) -> set[str]:
    """Absolute names of every flenwheel module (or package) the file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("flenwheel"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path)
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("flenwheel"):
                target = node.module
            else:
                continue
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def _room(module: str) -> str | None:
    """The subpackage a module belongs to: flenwheel.core.<room>, flenwheel.comfy_tools.dev, or a top room."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in ROOMS:
        return None
    if parts[1] == "core" and len(parts) > 2:
        return ".".join(parts[:3]) if (PACK / "core" / parts[2]).is_dir() else None
    if parts[1] == "comfy_tools" and len(parts) > 2 and parts[2] == "dev":
        return "flenwheel.comfy_tools.dev"
    return ".".join(parts[:2])


def _graph() -> dict[str, dict[str, set[str]]]:
    """room -> imported room -> the files that make the edge."""
    graph: dict[str, dict[str, set[str]]] = {}
    for top in ROOMS:
        for path in (PACK / top).rglob("*.py"):
            source = _room(_module_name(path))
            if source is None:
                continue
            for target in map(_room, _imports(path)):
                if target and target != source:
                    graph.setdefault(source, {}).setdefault(target, set()).add(str(path.relative_to(PACK)))
    return graph


GRAPH = _graph()


def _edges_from(prefix: str) -> list[tuple[str, str, set[str]]]:
    return [(s, t, files) for s, targets in GRAPH.items() if s.startswith(prefix) for t, files in targets.items()]


def test_the_graph_is_read_from_real_files():
    assert "flenwheel.core.data" in GRAPH["flenwheel.trainers"]
    assert any(t.startswith("flenwheel.core.") for t in GRAPH["flenwheel.nodes"])


def test_core_never_imports_nodes_cli_or_comfy_tooling():
    outer = ("nodes", "cli", "comfy_tools")
    bad = [(s, t, f) for s, t, f in _edges_from("flenwheel.core.") if t.split(".")[1] in outer]
    assert not bad, bad


def test_trainers_import_only_core_data_and_core_models():
    allowed = {"flenwheel.core.data", "flenwheel.core.models"}
    bad = [(t, f) for _, t, f in _edges_from("flenwheel.trainers") if t not in allowed]
    assert not bad, bad


def test_core_has_only_packages():
    loose = sorted(p.name for p in (PACK / "core").glob("*.py") if p.name != "__init__.py")
    assert not loose


@pytest.mark.parametrize("room", sorted({*GRAPH, *(t for v in GRAPH.values() for t in v)}))
def test_no_import_cycle_through(room):
    def reaches(start: str, goal: str, seen: set[str]) -> list[str] | None:
        for nxt in GRAPH.get(start, {}):
            if nxt == goal:
                return [start, nxt]
            if nxt not in seen:
                seen.add(nxt)
                path = reaches(nxt, goal, seen)
                if path:
                    return [start, *path]
        return None

    cycle = reaches(room, room, set())
    assert cycle is None, " -> ".join(cycle or [])


def test_no_room_of_core_is_crowded():
    rooms = [p for p in (PACK / "core").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert len(rooms) >= 10
    crowded = {r.name: n for r in rooms if (n := len(list(r.glob("*.py"))) - 1) > 15}
    assert not crowded


def test_the_architecture_doc_names_every_room():
    doc = (PACK / "docs" / "architecture.md").read_text(encoding="utf-8")
    rooms = [f"core/{p.name}/" for p in (PACK / "core").iterdir() if (p / "__init__.py").exists()]
    rooms += ["cli/", "comfy_tools/", "comfy_tools/dev/", "nodes/", "trainers/"]
    missing = [room for room in rooms if f"`{room}`" not in doc]
    assert not missing
