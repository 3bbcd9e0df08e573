"""Every shipped workflow (workflows/*.json and their API twins in workflows/api/) validates.

The specs come from the nodes as they are now, so changing a node's inputs without updating the
workflows that use it fails here. With no workflows in the folder the test has nothing to check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flenwheel.core.node_specs import known_specs
from flenwheel.core.workflow_check import check_in_folder, workflow_files

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
FILES = workflow_files(WORKFLOWS) if WORKFLOWS.is_dir() else []


@pytest.fixture(scope="module")
def specs():
    return known_specs()


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(WORKFLOWS).as_posix() for p in FILES])
def test_shipped_workflow_is_valid(path, specs):
    problems = check_in_folder(path, WORKFLOWS, specs)
    assert not problems, "\n".join(map(str, problems))
