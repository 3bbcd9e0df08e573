"""``python -m flenwheel`` and ``python <pack folder>``: the CLI from ComfyUI's own interpreter.

ComfyUI's install (git clone + requirements.txt) does not create the ``flenwheel`` console script,
and portable ComfyUI ships an embedded Python without a usable ``pip``. So the CLI also runs as
``python -m flenwheel`` (from ``ComfyUI/custom_nodes``, or wherever the package is installed) and
as ``python path/to/custom_nodes/flenwheel`` (any working directory, any folder name). In the
second form Python runs this file as a plain script with the pack folder first on ``sys.path``;
that entry is dropped (the pack's ``nodes`` folder would shadow ComfyUI's ``nodes`` module) and the
folder is imported as the package ``flenwheel`` by its location.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_pack_as_package() -> None:
    """Import this folder as ``flenwheel`` when it was run as a script (no parent package)."""
    pack = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != pack]
    spec = importlib.util.spec_from_file_location(
        "flenwheel", pack / "__init__.py", submodule_search_locations=[str(pack)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["flenwheel"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    if not __package__:
        _load_pack_as_package()
    from flenwheel.cli import main

    main()
