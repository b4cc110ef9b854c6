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
