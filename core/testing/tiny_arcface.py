"""A random ArcFace-shaped ONNX model: what ``identity.arcface`` loads, without insightface's weights.

insightface's ``w600k_r50.onnx`` takes a Nx3x112x112 float face and returns a Nx512 embedding. This
model has the same input and output (a strided convolution, ReLU, global average pooling and a linear
layer), so the loading, alignment and scoring code runs exactly as with the real file; its weights are
returned too, so a test can recompute the embedding independently (e.g. with torch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EMBEDDING = 512
CHANNELS = 8


def build_tiny_arcface(path: str | Path, seed: int = 0, normalises_input: bool = False) -> dict[str, np.ndarray]:
    """Write the model to ``path`` and return its weights (``conv_w``, ``conv_b``, ``fc_w``, ``fc_b``).

    ``normalises_input`` puts insightface's ``Sub``/``Mul`` input normalisation inside the graph (the loader
    must then feed raw 0-255 pixels)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = {
        "conv_w": rng.normal(0, 0.3, (CHANNELS, 3, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(0, 0.1, CHANNELS).astype(np.float32),
        "fc_w": rng.normal(0, 0.5, (EMBEDDING, CHANNELS)).astype(np.float32),
        "fc_b": rng.normal(0, 0.1, EMBEDDING).astype(np.float32),
    }
    nodes, first = [], "input.1"
    constants = dict(weights)
    if normalises_input:
        constants |= {"mean": np.array(127.5, np.float32), "scale": np.array(1 / 127.5, np.float32)}
        nodes += [helper.make_node("Sub", [first, "mean"], ["centred"], name="Sub_0"),
                  helper.make_node("Mul", ["centred", "scale"], ["scaled"], name="Mul_1")]
        first = "scaled"
    nodes += [
        helper.make_node("Conv", [first, "conv_w", "conv_b"], ["conv"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["embedding"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", EMBEDDING])],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return weights
