"""Names of character LoRA versions, and the LoRA references users type.

The trainer writes ``models/flux_lora/char_vN/char_lora_vN.safetensors``. Users refer to it as
``char_v1`` (or ``v1``, or ``latest``), optionally with a strength (``char_v1:0.8``); a file path
or a name in ComfyUI's ``loras`` folder works too, for style LoRAs. Records cite the version
(``lora_version: "char_v1"``) so later stages can tell which iteration made an image.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..data.errors import ModelLoadError
from ..data.project import Project
from .loras import LoraSpec, parse_lora
from .registry import CHARACTER, default_family

_VERSION_REF = re.compile(r"^(?:char_)?(v[1-9][0-9]*)$")
_CHAR_DIR = re.compile(r"^char_(v[1-9][0-9]*)$")
LATEST = "latest"


def character_lora_file(project: Project, version: str) -> Path:
    """Where the trainer puts the final LoRA of ``version`` (``v1``)."""
    layout = default_family(CHARACTER).lora
    return layout.version_folder(project.root, version) / layout.file_name(version)


def character_versions(project: Project) -> list[str]:
    """Versions (``v1``, ``v2``...) whose final LoRA file exists, oldest first."""
    root = project.root / default_family(CHARACTER).lora.folder
    found = (
        [m.group(1) for p in root.glob("char_v*") if (m := _CHAR_DIR.match(p.name))] if root.is_dir() else []
    )
    return sorted((v for v in found if character_lora_file(project, v).is_file()), key=lambda v: int(v[1:]))


def lora_version_of(path: str | Path) -> str | None:
    """``char_v1`` for a file inside a ``char_v1`` folder, else None (a style LoRA)."""
    match = _CHAR_DIR.match(Path(path).parent.name)
    return f"char_{match.group(1)}" if match else None


def _project_lora(project: Project | None, ref: str) -> Path:
    if project is None:
        raise ModelLoadError(f"LoRA '{ref}' names a character LoRA version, which needs a project")
    have = character_versions(project)
    if ref == LATEST:
        if not have:
            raise ModelLoadError(
                f"the project has no trained character LoRA yet (no {project.root}/models/flux_lora/"
                "char_vN/char_lora_vN.safetensors); train one or pass a LoRA file"
            )
        return character_lora_file(project, have[-1])
    version = _VERSION_REF.match(ref).group(1)  # type: ignore[union-attr]
    file = character_lora_file(project, version)
    if not file.is_file():
        trained = ", ".join(f"char_{v}" for v in have) or "none"
        raise ModelLoadError(
            f"{file} does not exist (trained versions: {trained}); if training stopped early, "
            f"pass a checkpoint file from {file.parent / 'checkpoints'} instead"
        )
    return file


def resolve_lora(
    ref: str, project: Project | None = None, lookup: Callable[[str], str | None] | None = None
) -> Path:
    """A LoRA reference to a file: a project version, an existing path, or a name ``lookup`` knows."""
    ref = ref.strip()
    if ref == LATEST or _VERSION_REF.match(ref):
        return _project_lora(project, ref)
    path = Path(ref).expanduser()
    if path.is_file():
        return path.resolve()
    found = lookup(ref) if lookup is not None else None
    if found and Path(found).is_file():
        return Path(found).resolve()
    raise ModelLoadError(
        f"LoRA '{ref}' not found: give char_vN, latest, a .safetensors path"
        + (" or a file of ComfyUI's loras folder" if lookup is not None else "")
    )


def parse_lora_ref(
    text: str, project: Project | None = None, lookup: Callable[[str], str | None] | None = None
) -> LoraSpec:
    """``REF`` or ``REF:STRENGTH`` (e.g. ``char_v1:0.8``) to a spec with a resolved file."""
    spec = parse_lora(text.strip())
    return LoraSpec(str(resolve_lora(spec.path, project, lookup)), spec.strength)
