"""Static sentence embeddings from the token table the ``wordllama`` package ships.

WordLlama (``l2_supercat``) distils the input-token embeddings of several large language
models into one table: 32,000 Llama-2 tokens x 256 dimensions (Matryoshka-trained, so the
first 64/128 dimensions are usable embeddings on their own), 16 MB in float16, carried in
the PyPI wheel. A text's embedding is the mean of its tokens' rows, L2-normalized; no
network, no torch, about 20 microseconds per short message.

The package's own loader looks for the tokenizer file in the wrong folder and then tries
to download it, so this module reads the two files from the installed package directly
(without importing it).

>>> embeddings = WordLlamaEmbeddings(dim=64)
>>> vectors = embeddings.embed(["where is my card", "my card has not arrived", "hello"])
>>> vectors.shape
(3, 64)
>>> bool(vectors[0] @ vectors[1] > vectors[0] @ vectors[2])
True
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tailorbot.compiled import native
from tailorbot.models.intent.row_cache import RowCache
from tailorbot.models.intent.token_pieces import PieceTokenizer

PACKAGE = "wordllama"
CONFIGURATIONS = {"l2_supercat": 256}  # the configuration the wheel carries -> its width
TOKEN_CACHE = 8_192  # tokens whose rows embed_one keeps as float32 (8 MB at 256 dimensions)


class EmbeddingsUnavailable(RuntimeError):
    """The package carrying the embedding table is not installed or lacks its files."""


class WordLlamaEmbeddings:
    """Mean-pooled, L2-normalized WordLlama token embeddings.

    Parameters
    ----------
    config
        The WordLlama configuration whose files the wheel carries.
    dim
        Leading dimensions kept (Matryoshka truncation): 64, 128 or 256.
    """

    def __init__(self, config: str = "l2_supercat", dim: int = 256) -> None:
        if config not in CONFIGURATIONS:
            raise ValueError(f"unknown WordLlama configuration {config!r}; known: {CONFIGURATIONS}")
        if not 1 <= dim <= CONFIGURATIONS[config]:
            raise ValueError(f"dim must be in [1, {CONFIGURATIONS[config]}], got {dim}")
        self.config = config
        self.dim = dim
        self._table: np.ndarray | None = None  # (vocabulary, dim) float16; loaded lazily
        self._tokenizer: Any = None
        self._rows: RowCache[int, None] | None = None  # float32 rows of the serving path
        # the serving path's tokenizer, per piece; False where the tokenizer's merges may
        # cross a space (then each text is encoded whole)
        self._pieces: PieceTokenizer | bool | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of many texts, shape ``(len(texts), dim)``, float32."""
        table, tokenizer = self._loaded()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, encoding in enumerate(tokenizer.encode_batch(list(texts))):
            if encoding.ids:
                out[row] = table[encoding.ids].mean(axis=0, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)

    def embed_one(self, text: str) -> np.ndarray:
        """The embedding of one text, shape ``(dim,)`` (the serving path).

        The float32 mean of the float16 rows, summed in the same order, bit for bit: in the
        compiled loop where it is built; else, as summing float16 rows in numpy costs a slow
        cast per value, from rows kept as float32 (``TOKEN_CACHE`` tokens at most).
        """
        table = self._loaded()[0]
        ids = self._ids(text)
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        loops = native()
        vector: np.ndarray
        if loops is not None:  # the same sums in C, converting each float16 as it goes
            vector = np.empty(self.dim, dtype=np.float32)
            loops.mean_rows(table, ids, vector)
        else:
            if self._rows is None:
                self._rows = RowCache(TOKEN_CACHE, self.dim, np.float32, _copy_row(table))
            vector = self._rows.gather(ids)[1].sum(axis=0)
            vector /= np.float32(len(ids))
        norm = float(np.sqrt(vector @ vector))
        return vector / norm if norm > 0 else vector

    def add_weighted_scores(
        self,
        text: str,
        weight: float,
        coef: np.ndarray,
        scores: np.ndarray,
        projections: dict[int, bytes],
    ) -> np.ndarray:
        """``embed_one(text) * weight`` (returned), with its product by ``coef`` (one row
        per dimension) added to ``scores``: a linear model's embedding part, in one compiled
        call where the extension is built. There the product is the sum of each token's
        row times ``coef``, scaled by the mean's weight and norm, each token's made once
        and kept in ``projections`` (bytes of float64; the caller's, for this ``coef``
        alone): a message's dozen kept rows instead of a pass over ``coef``. At most one
        a token of the vocabulary (some 24 MB at 32,000 tokens and 84 classes; Banking77's
        test messages use 2,523, 1.8 MB). Summed in float64, so it differs from numpy's
        float32 product by float32 rounding; the same doubles whatever ``projections`` held
        before."""
        loops = native()
        if loops is None:
            dense: np.ndarray = self.embed_one(text) * np.float32(weight)
            scores += dense @ coef
            return dense
        dense = np.empty(self.dim, dtype=np.float32)
        loops.embedding_scores(
            self._loaded()[0], self._ids(text), weight, coef, dense, scores, projections
        )
        return dense

    def _ids(self, text: str) -> list[int]:
        # encode(), not encode_batch_fast([text]) (2 µs less CPU): the batch call releases the
        # GIL, and getting it back from a busy thread (the server's event loop) waits up to
        # the 5 ms switch interval, in every decision
        tokenizer = self._loaded()[1]
        if self._pieces is None:
            pieces = PieceTokenizer.of(tokenizer)  # not `or`: an empty one has len() 0
            self._pieces = False if pieces is None else pieces
        if isinstance(self._pieces, PieceTokenizer):
            return self._pieces.ids(text)
        ids: list[int] = tokenizer.encode(text).ids
        return ids

    def _loaded(self) -> tuple[np.ndarray, Any]:
        if self._table is None or self._tokenizer is None:
            self._table, self._tokenizer = _load(self.config, self.dim)
        return self._table, self._tokenizer

    # the table comes back from the installed package, never from the pickle
    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "dim": self.dim,
            "_table": None,
            "_tokenizer": None,
            "_rows": None,
            "_pieces": None,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_rows", None)  # pickled before the serving rows existed
        state.setdefault("_pieces", None)
        self.__dict__.update(state)


def _copy_row(table: np.ndarray) -> Callable[[int, np.ndarray], None]:
    def copy(token: int, row: np.ndarray) -> None:
        row[:] = table[token]

    return copy


def installed_package_dir(package: str, missing: str) -> Path:
    """Where the installed ``package`` lives (read as files, never imported); ``missing`` is
    the :class:`EmbeddingsUnavailable` message when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingsUnavailable(missing)
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=4)
def _load(config: str, dim: int) -> tuple[np.ndarray, Any]:
    """The table (read-only) and the tokenizer, loaded once per process and shared by every
    model that embeds with them (each instance loaded its own: ~0.1 s and a copy of the
    table, many times over in a training run's folds and candidates)."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    root = installed_package_dir(
        PACKAGE,
        f"the {PACKAGE!r} package is not installed: pip install tailorbot (it is a "
        "dependency) or choose the 'tfidf' intent model",
    )
    weights = root / "weights" / f"{config}_{CONFIGURATIONS[config]}.safetensors"
    tokenizer_file = root / "tokenizers" / f"{config}_tokenizer_config.json"
    for path in (weights, tokenizer_file):
        if not path.is_file():
            raise EmbeddingsUnavailable(f"{path}: missing from the installed {PACKAGE} package")
    table = np.ascontiguousarray(load_file(str(weights))["embedding.weight"][:, :dim])
    table.flags.writeable = False  # shared: nobody may change it under the others
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    # WordLlama encodes without special tokens (no <s>), like its own inference code
    tokenizer.post_processor = None
    return table, tokenizer
