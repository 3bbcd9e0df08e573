"""Write the pack's ComfyUI templates (workflows/*.json and workflows/api/*.json) from their descriptions.

    python scripts/build_workflows.py            # rewrite what changed, remove files no template makes
    python scripts/build_workflows.py --check    # exit 1 when a committed file is stale or left over

The descriptions live in ``flenwheel/core/workflow_templates.py``; widget values, link types and
sizes come from the nodes as they are now, so run this after changing a node's inputs. Thumbnails
(workflows/*.jpg) come from ``scripts/screenshots.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flenwheel.comfy_tools.dev.workflow_build import render_files
from flenwheel.comfy_tools.dev.workflow_templates import templates
from flenwheel.comfy_tools.node_specs import known_specs
from flenwheel.core.data.atomic import atomic_write_text

FOLDER = Path(__file__).resolve().parent.parent / "workflows"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale or left-over files")
    args = parser.parse_args()
    files = render_files(templates(), known_specs())
    stale = [name for name, text in files.items()
             if not (FOLDER / name).is_file() or (FOLDER / name).read_text(encoding="utf-8") != text]
    extra = sorted(p.relative_to(FOLDER).as_posix() for p in [*FOLDER.glob("*.json"), *FOLDER.glob("api/*.json")]
                   if p.relative_to(FOLDER).as_posix() not in files)
    if args.check:
        for name in stale:
            print(f"stale: workflows/{name}")
        for name in extra:
            print(f"no template makes: workflows/{name}")
        if not stale and not extra:
            print(f"{len(files) // 2} templates up to date")
        return 1 if stale or extra else 0
    for name in stale:
        atomic_write_text(FOLDER / name, files[name])
        print(f"wrote workflows/{name}")
    for name in extra:
        (FOLDER / name).unlink()
        print(f"removed workflows/{name}")
    print(f"{len(files) // 2} templates, {len(stale)} file(s) written, {len(extra)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
