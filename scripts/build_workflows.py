"""Write the pack's ComfyUI templates (workflows/*.json and workflows/api/*.json) from their descriptions.

    python scripts/build_workflows.py            # rewrite what changed, remove files no template makes
    python scripts/build_workflows.py --check    # exit 1 when a committed file is stale or left over
    python scripts/build_workflows.py --object-info http://127.0.0.1:8188 --out /tmp/wf
                                                 # the templates for the ComfyUI running there

The descriptions live in ``comfy_tools/dev/workflow_templates.py``; every input a node declares is
filled (the description's value, else the node's default), link types and sizes come from the nodes
as they are now, so run this after changing a node's inputs. ComfyUI's own nodes are described by
``comfy_tools/comfy_core_nodes.json`` (the newest supported ComfyUI, ``scripts/comfy_core_nodes.py``)
or, with ``--object-info``, by a running ComfyUI's ``/object_info``. Thumbnails (workflows/*.jpg) come
from ``scripts/screenshots.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

from flenwheel.comfy_tools.dev.workflow_build import render_files
from flenwheel.comfy_tools.dev.workflow_templates import templates
from flenwheel.comfy_tools.node_specs import known_specs, server_specs
from flenwheel.core.data.atomic import atomic_write_text

FOLDER = Path(__file__).resolve().parent.parent / "workflows"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale or left-over files")
    parser.add_argument("--object-info", metavar="URL", help="describe the nodes by this ComfyUI's /object_info")
    parser.add_argument("--out", type=Path, default=FOLDER, help="folder to write (default: workflows/)")
    args = parser.parse_args()
    specs = known_specs()
    if args.object_info:
        with urllib.request.urlopen(args.object_info.rstrip("/") + "/object_info", timeout=60) as response:
            specs = server_specs(json.loads(response.read()), args.object_info)
    files = render_files(templates(), specs)
    folder = args.out
    stale = [name for name, text in files.items()
             if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text]
    extra = sorted(p.relative_to(folder).as_posix() for p in [*folder.glob("*.json"), *folder.glob("api/*.json")]
                   if p.relative_to(folder).as_posix() not in files)
    if args.check:
        for name in stale:
            print(f"stale: workflows/{name}")
        for name in extra:
            print(f"no template makes: workflows/{name}")
        if not stale and not extra:
            print(f"{len(files) // 2} templates up to date")
        return 1 if stale or extra else 0
    for name in stale:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / name, files[name])
        print(f"wrote {folder / name}")
    for name in extra:
        (folder / name).unlink()
        print(f"removed {folder / name}")
    print(f"{len(files) // 2} templates, {len(stale)} file(s) written, {len(extra)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
