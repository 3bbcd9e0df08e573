"""Naming editor LoRAs: the project's own (``ours:vN``), a folder, a file, or a named file.

The editor LoRA trained on the triplets lives at
``models/qwen_lora/vN/qwen_char_lora_vN.safetensors``; enrichment, re-runs and compare-editors
accept it as ``ours:vN`` (``ours`` or ``ours:latest`` for the newest, ``ours:v2:0.8`` for a
strength), or as the ``models/qwen_lora/vN/`` folder itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..data.errors import ModelLoadError
from ..data.project import Project, parse_version
from .loras import LoraSpec, parse_lora
from .registry import EDITOR, default_family

OURS = "ours"
_VERSION = re.compile(r"^v[1-9][0-9]*$")
_NUMBER = re.compile(r"^-?[0-9]*\.?[0-9]+$")


def lora_file_name(version: str) -> str:
    """The editor LoRA file of ``version``, as the registry's editor family names it."""
    return default_family(EDITOR).lora.file_name(version)


def editor_lora_path(project: Project, version: str = "latest") -> Path:
    """The trained editor LoRA of ``version`` (``latest``: the newest version that has one)."""
    editor = default_family(EDITOR)
    root = project.root / editor.lora.folder
    if version == "latest":
        found = sorted((p.name for p in root.glob("v*") if _VERSION.match(p.name)
                        and (p / lora_file_name(p.name)).is_file()), key=parse_version) if root.is_dir() else []
        if not found:
            raise ModelLoadError(f"the project has no trained editor LoRA yet ({root}/vN/{lora_file_name('vN')}); "
                                 f"build triplets and train one with: flenwheel train {editor.name} --config ...")
        version = found[-1]
    parse_version(version)
    path = editor.lora.version_folder(project.root, version) / lora_file_name(version)
    if not path.is_file():
        raise ModelLoadError(f"editor LoRA ours:{version} not found: {path} does not exist (train it with "
                             f"flenwheel train {editor.name}, or pick another version)")
    return path


def lora_in_folder(folder: Path) -> Path:
    """The LoRA a folder such as ``models/qwen_lora/v1/`` holds (its ``qwen_char_lora_v1``, else the only one)."""
    named = folder / lora_file_name(folder.name)
    if named.is_file():
        return named
    files = sorted(folder.glob("*.safetensors"))
    if len(files) == 1:
        return files[0]
    listed = ", ".join(p.name for p in files) or "no .safetensors files"
    raise ModelLoadError(f"{folder} is a folder, not a LoRA file ({listed}); name the file")


def resolve_lora(text: str, project: Project | None = None) -> LoraSpec:
    """``ours[:vN][:STRENGTH]``, a LoRA folder, or ``PATH[:STRENGTH]``, as a LoRA to load."""
    head, _, rest = text.strip().partition(":")
    if head == OURS:
        if project is None:
            raise ModelLoadError("ours:vN names the project's editor LoRA; give the project (or a file path)")
        parts = [part for part in rest.split(":") if part]
        version = parts.pop(0) if parts and not _NUMBER.match(parts[0]) else "latest"
        strength = float(parts[0]) if parts else 1.0
        return LoraSpec(str(editor_lora_path(project, version)), strength)
    spec = parse_lora(text.strip())
    path = Path(spec.path).expanduser()
    if path.is_dir():
        return LoraSpec(str(lora_in_folder(path)), spec.strength)
    return spec
