"""The step-1.5 nodes as ComfyUI calls them: loader -> LoRA nodes -> generate / compare."""

from __future__ import annotations

import pytest

from flenwheel.core.testing.tiny_comfy_files import export_flux_files
from flenwheel.nodes import compare_node, flux_node, generate_node
from flenwheel.nodes.flux_node import FROM_MODEL

NODES = [
    *flux_node.NODE_CLASS_MAPPINGS.values(),
    *generate_node.NODE_CLASS_MAPPINGS.values(),
    *compare_node.NODE_CLASS_MAPPINGS.values(),
]
RENDER = {"variants": 1, "base_seed": 0, "width": 32, "height": 32, "steps": 2, "guidance": 3.5}


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.__name__)
def test_nodes_describe_every_input(node):
    assert node.DESCRIPTION and node.CATEGORY.startswith("FLENwheel/")
    assert len(node.RETURN_TYPES) == len(node.RETURN_NAMES) == len(node.OUTPUT_TOOLTIPS)
    spec = node.INPUT_TYPES()
    for group in spec.values():
        for name, (_kind, options) in group.items():
            assert options.get("tooltip"), f"{node.__name__}.{name} has no tooltip"


@pytest.fixture
def chain(lora_project, tiny_flux, tiny_loras, tmp_path):
    """Loader (transformer from a ComfyUI-style file) -> character LoRA v1 -> a 'style' LoRA at 0.3."""
    files = export_flux_files(tiny_flux, tmp_path / "models")
    flux, description = flux_node.FlenwheelLoadFlux().load(
        str(tiny_flux),
        files.transformer,
        FROM_MODEL,
        FROM_MODEL,
        FROM_MODEL,
        "fp32",
        "none",
        "none",
        "none",
        False,
        "cpu",
    )
    assert "flux1-tiny.safetensors" in description
    with_char, path = flux_node.FlenwheelCharacterLora().add(flux, lora_project, "char_v1", 1.0)
    assert path.endswith("char_v1/char_lora_v1.safetensors") and flux.lora_specs == ()
    (styled,) = flux_node.FlenwheelFluxLora().add(with_char, str(tiny_loras["v2"]), 0.3)
    assert [s.strength for s in styled.lora_specs] == [1.0, 0.3] and styled.pipe is flux.pipe
    return styled


def test_generate_node_outputs_images_dataset_and_summary(chain, lora_project, monkeypatch):
    reports = []

    def progress(total):
        def update(done, total_, preview=None):
            assert preview is not None and len(lora_project.dataset("synthetic").records) == done
            reports.append((done, total_))

        return update

    monkeypatch.setattr(generate_node, "comfy_progress", progress)
    images, dataset, summary = generate_node.FlenwheelFluxLoraGenerate().generate(
        chain,
        lora_project,
        "angles, poses",
        batch_size=2,
        version="auto",
        prompt_ids="front, t-pose, sitting",
        **RENDER,
    )
    assert tuple(images.shape) == (3, 32, 32, 3) and reports == [(1, 3), (2, 3), (3, 3)]
    assert dataset.label == "synthetic/v1" and len(dataset) == 3
    assert "synthetic/v1: 3 generated" in summary and "FAIL 50+ images" in summary
    record = dataset.records()[0]
    assert [lora.strength for lora in record.loras] == [1.0, 0.3] and record.model == "flux1-tiny.safetensors"
    assert record.model_dump()["lora_version"] == "char_v1"


def test_cancel_keeps_finished_images_and_a_rerun_resumes(chain, lora_project, monkeypatch):
    class Interrupted(Exception):
        pass

    steps = []

    def interrupt_on_fifth_step():
        steps.append(1)
        if len(steps) == 5:
            raise Interrupted

    monkeypatch.setattr(generate_node, "check_interrupt", interrupt_on_fifth_step)
    node = generate_node.FlenwheelFluxLoraGenerate()
    args = dict(
        families="angles", batch_size=1, version="auto", prompt_ids="front, half-left, half-right", **RENDER
    )
    with pytest.raises(Interrupted):
        node.generate(chain, lora_project, **args)
    assert len(lora_project.dataset("synthetic").records) == 2
    images, dataset, summary = node.generate(chain, lora_project, **args)
    assert images.shape[0] == 3 and "1 generated, 2 already there (resumed)" in summary
    new_images, new_dataset, _ = node.generate(chain, lora_project, **{**args, "version": "new"})
    assert new_dataset.label == "synthetic/v2" and new_images.shape[0] == 3


def test_compare_node_returns_a_grid(chain, lora_project, flux):
    grid, legend = compare_node.FlenwheelCompareLoras().compare(
        flux, lora_project, "char_v1:0.5,1\nbase", "front", cell_size=64, save=True, **RENDER
    )
    assert grid.shape[0] == 1 and grid.shape[2] > 3 * 64
    assert "char_v1 @0.5 | char_v1 @1 | base" in legend and "saved:" in legend
    assert list((lora_project.benchmarks_dir / "comparisons").glob("*.png"))
