"""Which language a customer writes in: ``py3langid`` (a maintained fork of langid.py).

The detector is restricted to the languages a deployment expects (fewer candidates, fewer
confusions) and answers ``None`` when it cannot tell: a message shorter than ``min_chars``,
or one whose best language has a normalized probability under ``min_confidence``. Greetings
and one-word replies ("hi", "ok", "no") are like that in many languages; the caller treats
``None`` as the deployment's main language. About 15 microseconds a message after a one-off
load of ~0.5 s (the 4.6 MB model ships in the wheel; ~50 MB resident once loaded).

>>> detector = LanguageDetector(("en", "de", "fr", "es"))
>>> detector.detect("Wo ist meine Karte? Ich habe sie vor zwei Wochen bestellt.")
'de'
>>> detector.detect("ok") is None
True
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")


class LanguageDetector:
    """Language identification of short messages among ``languages`` (ISO 639-1 codes).

    Parameters
    ----------
    languages
        Candidate languages; at least two.
    min_chars
        Shorter messages are not classified (``None``).
    min_confidence
        Normalized probability the best language needs.
    """

    def __init__(
        self,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        min_chars: int = 8,
        min_confidence: float = 0.9,
    ) -> None:
        if len(set(languages)) < 2:
            raise ValueError(f"language detection needs at least 2 languages, got {languages}")
        self.languages = tuple(languages)
        self.min_chars = min_chars
        self.min_confidence = min_confidence
        self._identifier: Any = None  # loaded on first use, never pickled

    def detect(self, text: str) -> str | None:
        """The language of ``text``, or ``None`` when it is too short or unclear."""
        if len(text.strip()) < self.min_chars:
            return None
        language, probability = self._loaded().classify(text)
        return str(language) if probability >= self.min_confidence else None

    def _loaded(self) -> Any:
        if self._identifier is None:
            self._identifier = _identifier(self.languages)
        return self._identifier

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_identifier": None}


@functools.lru_cache(maxsize=4)
def _identifier(languages: tuple[str, ...]) -> Any:
    """A py3langid identifier restricted to ``languages``, built once per process and shared
    (read-only) by every detector of them: the build unpacks the whole model, ~0.5 s, which a
    training run paid for each candidate it loaded."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    full = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    unknown = sorted(set(languages) - set(full.nb_classes))
    if unknown:
        raise ValueError(f"py3langid does not know the languages {unknown}")
    full.set_languages(list(languages))
    # a fresh identifier from the restricted tables only: the full 100k x 142 table the
    # first one keeps for set_languages() would cost ~25 MB more
    return LanguageIdentifier(
        full.nb_ptc.copy(),
        full.nb_pc,
        full.nb_classes,
        full.tk_nextmove,
        full.tk_output,
        norm_probs=True,
        tk_row=full.tk_row,
    )
