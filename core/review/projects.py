"""Which projects a review server may show, each under an opaque key.

A browser never names a folder: it picks a key from ``GET /flenwheel/review/projects``, and the key
maps back to a project this server already trusts. ``flenwheel review serve`` trusts the one
project it was started on. Inside ComfyUI the trusted set is the projects that nodes opened in
this session plus project folders found under ComfyUI's output folder (where the Project node
creates them by default), so the sidebar lists them without anyone typing a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..data.errors import FlenwheelError
from ..data.project import PROJECT_FILE, Project
from .items import ForeignImageError

KEY = re.compile(r"^[0-9a-f]{16}$")
SCAN_DEPTH = 3
SCAN_EVERY_S = 5.0


def project_key(project: Project) -> str:
    """A stable key for a project folder that reveals nothing about its path."""
    return hashlib.sha256(str(project.root).encode("utf-8")).hexdigest()[:16]


class ProjectRegistry:
    """Known projects by key; ``search_roots`` (if given) are scanned for more project folders."""

    def __init__(self, projects: Iterable[Project] = (),
                 search_roots: Callable[[], Iterable[Path]] | None = None) -> None:
        self._projects: dict[str, Project] = {}
        self._search_roots = search_roots
        self._scanned_at = float("-inf")
        self._lock = threading.Lock()
        for project in projects:
            self.add(project)

    def add(self, project: Project) -> str:
        key = project_key(project)
        with self._lock:
            self._projects[key] = project
        return key

    def get(self, key: str) -> Project:
        if not isinstance(key, str) or not KEY.match(key):
            raise ForeignImageError("unknown project")
        with self._lock:
            found = self._projects.get(key)
        if found is None:
            self._scan(force=True)
            with self._lock:
                found = self._projects.get(key)
        if found is None:
            raise ForeignImageError("unknown project; open it with a FLENwheel Project node first")
        return found

    def entries(self) -> list[dict[str, Any]]:
        self._scan()
        with self._lock:
            projects = list(self._projects.values())
        described = (self.describe(project) for project in projects)
        return sorted(described, key=lambda entry: entry["name"].lower())

    def describe(self, project: Project) -> dict[str, Any]:
        return {"key": project_key(project), "name": project.config.name,
                "folder": self._display(project.root), "token": project.subject}

    def _display(self, root: Path) -> str:
        for base in self._roots():
            if root.is_relative_to(base):
                return root.relative_to(base).as_posix()
        return str(root)

    def _roots(self) -> list[Path]:
        return [Path(root).resolve() for root in self._search_roots()] if self._search_roots else []

    def projects(self) -> list[Project]:
        """Every project known now, after a fresh look under the search roots (the page's next listing looks again)."""
        self._scan(force=True)
        with self._lock:
            return list(self._projects.values())

    def _scan(self, force: bool = False) -> None:
        """Look for project folders under the search roots (a listing at most every few seconds)."""
        if not self._search_roots or (not force and time.monotonic() - self._scanned_at < SCAN_EVERY_S):
            return
        if not force:
            self._scanned_at = time.monotonic()
        for root in self._roots():
            for folder in _project_folders(root, SCAN_DEPTH):
                try:
                    self.add(Project.open(folder))
                except FlenwheelError:
                    continue


def _project_folders(root: Path, depth: int) -> Iterable[Path]:
    """Folders holding ``flenwheel.json`` within ``depth`` levels (no hidden folders, no symlinks)."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    if any(entry.name == PROJECT_FILE and entry.is_file(follow_symlinks=False) for entry in entries):
        yield root
        return
    if depth == 0:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            yield from _project_folders(Path(entry.path), depth - 1)
