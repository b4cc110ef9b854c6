"""TF-IDF n-grams and static sentence embeddings, side by side, in one linear SVM.

The word and character n-grams catch the exact wording (and typos); the embedding carries
meaning across synonyms the training data never paired ("parcel" and "package"). Both are
concatenated into one feature vector (the embedding scaled by ``embedding_weight``), so the
SVM learns how much each is worth per intent; calibration and fallback are the TF-IDF
model's. Serving adds one tokenization and a 256-wide mean to the TF-IDF path (tens of
microseconds).

>>> model = HybridIntentModel().fit(
...     ["where is my new card", "my card has not arrived yet", "how do I top up",
...      "add money to my account", "what's the weather", "tell me a joke"],
...     ["card_arrival", "card_arrival", "top_up", "top_up", "out_of_scope", "out_of_scope"])
>>> model.predict_one("my card still hasn't arrived").name
'card_arrival'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tailorbot.models.intent.fallback import FallbackPolicy
from tailorbot.models.intent.static_embeddings import WordLlamaEmbeddings
from tailorbot.models.intent.tfidf import TfidfIntentModel


class HybridIntentModel(TfidfIntentModel):
    """:class:`TfidfIntentModel` with WordLlama sentence embeddings appended to its features.

    Parameters
    ----------
    C, tol, word_ngram_range, char_ngram_range, char_min_df, fallback, correct_typos, class_weight
        As for :class:`TfidfIntentModel` (``C`` chosen on Banking77 validation rows).
    embedding_dim
        Leading embedding dimensions used (64, 128 or 256; Matryoshka-trained).
    embedding_weight
        Scale of the (unit-length) embedding next to the (unit-length) TF-IDF blocks.
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
    ) -> None:
        super().__init__(
            C,
            tol,
            word_ngram_range,
            char_ngram_range,
            char_min_df,
            fallback,
            correct_typos,
            class_weight,
        )
        self.embedding_dim = embedding_dim
        self.embedding_weight = embedding_weight
        self._embeddings = WordLlamaEmbeddings(dim=embedding_dim)
        self._known: np.ndarray | None = None
        # each token's embedding row times the fitted coefficients it was made with (see
        # add_weighted_scores); never pickled
        self._projections: tuple[np.ndarray, dict[int, bytes]] | None = None

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "embeddings": f"wordllama/{self._embeddings.config}",
            "embedding_dim": self.embedding_dim,
            "embedding_weight": self.embedding_weight,
        }

    def _dense_features(self, texts: Sequence[str]) -> np.ndarray:
        return self._embeddings.embed(texts) * np.float32(self.embedding_weight)

    def _dense_one(self, text: str) -> np.ndarray:
        return self._embeddings.embed_one(text) * np.float32(self.embedding_weight)

    def _add_dense_scores(
        self, text: str, scores: np.ndarray, coef: np.ndarray
    ) -> np.ndarray | None:
        # one compiled call for the mean, the norm and the product where it is built; the
        # tokens' projections are kept for the fitted coefficients they were made with, so a
        # fit (a new array) starts afresh
        fitted = self._fitted()[0]
        kept = self._projections
        if kept is None or kept[0] is not fitted:
            kept = self._projections = (fitted, {})
        return self._embeddings.add_weighted_scores(
            text, self.embedding_weight, coef, scores, kept[1]
        )

    # -- nearest training message, for the fallback's min_similarity ---------------------
    def index_similarity(self, texts: Sequence[str], labels: Sequence[str]) -> HybridIntentModel:
        """Keep the unit embeddings of the in-scope training messages (distinct texts): the
        fallback's ``min_similarity`` compares each message with its nearest one. About
        1 KB per message (10 MB for Banking77's train split) in memory and in the model file,
        and one matrix-vector product per served message while the rule is on."""
        oos = self.fallback.oos_label
        known = sorted({t for t, y in zip(texts, labels, strict=True) if y != oos})
        self._known = self._embeddings.embed(self._corrected(known)) if known else None
        return self

    def similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's cosine similarity to its nearest indexed training message."""
        if self._known is None:
            raise RuntimeError("no training messages indexed; call index_similarity() first")
        unit = self._embeddings.embed(self._corrected(texts))
        return np.concatenate(
            [np.zeros(0, dtype=np.float32)]
            + [
                (unit[i : i + _CHUNK] @ self._known.T).max(axis=1)
                for i in range(0, len(unit), _CHUNK)
            ]
        )

    def fallback_similarity(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.fallback.min_similarity is None or self._known is None:
            return None
        return self.similarity(texts)

    def _similarity_one(self, text: str, dense: np.ndarray | None) -> float | None:
        if self._known is None:
            return None
        if dense is not None and self.embedding_weight:
            unit = dense[: self.embedding_dim] / np.float32(self.embedding_weight)
        else:
            unit = self._embeddings.embed_one(text)
        return float((self._known @ unit).max())

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_projections"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_known", None)  # models saved before the similarity index
        state.setdefault("_projections", None)
        super().__setstate__(state)


_CHUNK = 1024  # rows of a batch compared with the index at once (bounds the score matrix)
