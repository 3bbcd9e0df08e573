"""What made an image in a native graph: the models, LoRAs and sampler settings read from ComfyUI's prompt.

ComfyUI hands an output node the whole API-format prompt (``{node id: {class_type, inputs}}``)
through its hidden ``PROMPT`` input. The nodes upstream of the save node are the ones that made
its images, so lineage comes from them: the base model a ``UNETLoader`` or checkpoint loader
names, the LoRAs of ``LoraLoaderModelOnly`` / ``LoraLoader`` with their strengths, the text
encoders, the VAE and the sampler's settings. Only literal widget values count; a value fed by a
link is not a setting of that node (a LoRA whose strength comes from a link is marked
``strength_unknown``). Plain dicts in, plain dicts out: no ComfyUI needed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.errors import FlenwheelError
from ..data.records import LoraRef
from ..models.character_lora import lora_version_of

BASE_MODELS = {"UNETLoader": "unet_name", "UnetLoaderGGUF": "unet_name", "CheckpointLoaderSimple": "ckpt_name",
               "CheckpointLoader": "ckpt_name", "ImageOnlyCheckpointLoader": "ckpt_name"}
LORA_LOADERS = ("LoraLoaderModelOnly", "LoraLoader")
ENCODERS = {"DualCLIPLoader": ("clip_name1", "clip_name2"), "CLIPLoader": ("clip_name",)}
SAMPLER_FIELDS = {
    "KSampler": ("sampler_name", "scheduler", "steps", "cfg", "denoise"),
    "KSamplerAdvanced": ("sampler_name", "scheduler", "steps", "cfg"),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "FluxGuidance": ("guidance",),
    "CLIPTextEncodeFlux": ("guidance",),
    "ModelSamplingAuraFlow": ("shift",),
}
_CHAR_FILE = re.compile(r"char_lora_(v\d+)")


@dataclass
class GraphLineage:
    """The models and settings upstream of one node; ``signature`` is what one dataset must not mix."""

    model: str | None = None
    loras: list[LoraRef] = field(default_factory=list)
    encoders: list[str] = field(default_factory=list)
    vae: str | None = None
    sampler: dict[str, Any] = field(default_factory=dict)

    @property
    def lora_version(self) -> str | None:
        """``char_vN`` of the character LoRA, from its folder or its file name."""
        for ref in self.loras:
            match = _CHAR_FILE.search(Path(ref.path).name)
            found = lora_version_of(ref.path) or (f"char_{match.group(1)}" if match else None)
            if found:
                return found
        return None

    def signature(self) -> dict[str, Any]:
        return {"model": self.model, "loras": [{"path": r.path, "strength": r.strength} for r in self.loras]}

    def fields(self) -> dict[str, Any]:
        """Record fields for an image this graph made."""
        return {"model": self.model, "loras": [ref.model_dump() for ref in self.loras],
                "lora_version": self.lora_version, "text_encoders": self.encoders, "vae": self.vae,
                "sampler": self.sampler}


def _literal(value: Any) -> bool:
    return not isinstance(value, list)


def upstream(prompt: dict[str, Any], node_id: str | None) -> list[str]:
    """Ids of the nodes that feed ``node_id`` (all nodes when it is not in the prompt), in id order."""
    if node_id is None or str(node_id) not in prompt:
        found = set(prompt)
    else:
        found, todo = set(), [str(node_id)]
        while todo:
            current = todo.pop()
            for value in (prompt.get(current) or {}).get("inputs", {}).values():
                if isinstance(value, list) and len(value) == 2 and str(value[0]) not in found:
                    found.add(str(value[0]))
                    todo.append(str(value[0]))
    return sorted(found, key=lambda n: (len(n), n))


def load_graph(path: str | Path) -> dict[str, Any]:
    """An API-format graph file (``{node id: {class_type, inputs}}``), or one line saying what is wrong with it."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FlenwheelError(f"graph file {file} is not readable JSON ({exc})") from None
    except RecursionError:
        raise FlenwheelError(f"graph file {file} nests too deeply to be a ComfyUI graph") from None
    if not isinstance(data, dict) or not all(isinstance(node, dict) and isinstance(node.get("inputs", {}), dict)
                                             for node in data.values()):
        raise FlenwheelError(f"graph file {file} is not an API-format graph ({{node id: {{class_type, inputs}}}}); "
                             "export it with ComfyUI's Export (API)")
    return data


def _strength(value: Any, node: str, kind: str) -> float:
    """A LoRA strength from a graph, or an error naming the node (a graph file is user text)."""
    try:
        strength = float(value)
    except (TypeError, ValueError):
        strength = math.nan
    if not math.isfinite(strength) or isinstance(value, bool):
        raise FlenwheelError(f"node {node} ({kind}): strength_model {value!r} is not a number")
    return strength


def read_lineage(prompt: dict[str, Any] | None, node_id: str | None = None) -> GraphLineage:
    """The lineage of images reaching ``node_id`` (see the module docstring); empty without a prompt."""
    lineage = GraphLineage()
    if not isinstance(prompt, dict):
        return lineage
    for key in upstream(prompt, node_id):
        node = prompt.get(key)
        if not isinstance(node, dict) or not isinstance(node.get("inputs") or {}, dict):
            continue
        kind, inputs = node.get("class_type"), node.get("inputs") or {}
        if kind in BASE_MODELS and _literal(inputs.get(BASE_MODELS[kind])) and lineage.model is None:
            lineage.model = inputs.get(BASE_MODELS[kind])
        elif kind in LORA_LOADERS and _literal(inputs.get("lora_name")) and inputs.get("lora_name"):
            strength = inputs.get("strength_model", 1.0)
            known = {"strength": _strength(strength, key, kind)} if _literal(strength) else {"strength_unknown": True}
            lineage.loras.append(LoraRef(path=str(inputs["lora_name"]), name=Path(str(inputs["lora_name"])).stem,
                                         **known))
        elif kind == "VAELoader" and _literal(inputs.get("vae_name")) and lineage.vae is None:
            lineage.vae = inputs.get("vae_name")
        elif kind in ENCODERS:
            lineage.encoders += [str(inputs[n]) for n in ENCODERS[kind] if _literal(inputs.get(n)) and inputs.get(n)]
        for name in SAMPLER_FIELDS.get(kind, ()):
            if name in inputs and _literal(inputs[name]):
                lineage.sampler.setdefault(name, inputs[name])
    return lineage


def png_text(prompt: dict[str, Any] | None, extra_pnginfo: dict[str, Any] | None) -> dict[str, Any]:
    """The text chunks ComfyUI's SaveImage writes: ``prompt`` and every extra entry (``workflow``)."""
    chunks: dict[str, Any] = {}
    if prompt is not None:
        chunks["prompt"] = prompt
    for key, value in (extra_pnginfo or {}).items():
        chunks[str(key)] = value
    return chunks
