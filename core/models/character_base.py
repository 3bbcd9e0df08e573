"""Loading whichever character base a project uses: FLUX.1 (with all its single files) or a newer base.

FLUX.1-dev can take each part from ComfyUI's folders (``flux_single_file``). Newer bases take only
their transformer from a single file, in the layout their registry entry names
(``transformer_single_file``), because diffusers reads no other part of them from ComfyUI's files
(ComfyUI's Qwen3 text encoders are not transformers checkpoints); the other parts come from the
diffusers folder or hub id. A name may be an alias that generates with another checkpoint of the
family (``z-image-turbo``): its hub id is the default source.
"""

from __future__ import annotations

from ..data.errors import ModelLoadError
from .flux_single_file import FluxFiles, load_flux
from .pipelines import LoadOptions, PipelineHandle, check_source, default_device, load_pipeline
from .registry import FLUX1_DEV, family
from .transformer_single_file import load_transformer_file


def load_character_base(name: str, source: str | None = None, files: FluxFiles | None = None,
                        options: LoadOptions | None = None) -> PipelineHandle:
    """The character base ``name`` (a registered family) from ``source`` (default: its hub id)."""
    entry = family(name)
    source = source or entry.hub_id_for(name)
    files = files or FluxFiles()
    options = options or LoadOptions()
    if entry is FLUX1_DEV:
        return load_flux(source, files, options)
    extra_parts = [part for part in ("vae", "clip_l", "t5") if getattr(files, part)]
    if extra_parts:
        raise ModelLoadError(f"{entry.title} takes only its transformer from a single file, not "
                             f"{', '.join(extra_parts)}; the other parts come from {source}")
    if not files.transformer:
        return load_pipeline(entry.name, source, options=options)
    options.validate()
    resolved = check_source(source, entry.name)
    device = options.device or default_device()
    transformer = load_transformer_file(entry, files.transformer, resolved, options, device)
    handle = load_pipeline(entry.name, resolved, options=options.after_transformer_file(),
                           components={"transformer": transformer})
    handle.options = {**options.to_json(), "files": files.to_json()}
    return handle
