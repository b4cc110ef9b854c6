"""Which language a customer writes in: ``py3langid`` (a maintained fork of langid.py).

The detector is restricted to the languages a deployment expects (fewer candidates, fewer
confusions) and answers ``None`` when it cannot tell: a message shorter than ``min_chars``,
or one whose best language has a normalized probability under ``min_confidence``. Greetings
and one-word replies ("hi", "ok", "no") are like that in many languages; the caller treats
``None`` as the deployment's main language. After a one-off load of ~0.5 s (the 4.6 MB model
ships in the wheel; ~50 MB resident once loaded), py3langid's own ``classify`` takes some
20 µs a message; the compiled loops (``csrc/language.c``) run the same model in about 2 µs:
the same languages, the probabilities to float32 rounding
(tests/models/intent/test_language_compiled.py).

>>> detector = LanguageDetector(("en", "de", "fr", "es"))
>>> detector.detect("Wo ist meine Karte? Ich habe sie vor zwei Wochen bestellt.")
'de'
>>> detector.detect("ok") is None
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from tailorbot.compiled import native

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
    identifier = LanguageIdentifier(
        full.nb_ptc.copy(),
        full.nb_pc,
        full.nb_classes,
        full.tk_nextmove,
        full.tk_output,
        norm_probs=True,
        tk_row=full.tk_row,
    )
    return CompiledIdentifier.of(identifier) or identifier


class CompiledIdentifier:
    """py3langid's ``classify`` (normalized probabilities) through the compiled loops: the
    same tables, walked and scored in one call (``csrc/language.c``) instead of a Python
    step a byte and a dozen numpy calls. Built by :meth:`of`, which answers ``None`` where
    the extension is missing or the identifier's tables are not the layout the C reads.

    >>> from tailorbot.compiled import native
    >>> identifier = _identifier(("en", "de"))
    >>> native() is None or identifier.classify("Where is my card?")[0] == "en"
    True
    """

    def __init__(
        self,
        classes: Sequence[str],
        tables: tuple[Any, ...],
        encode: Callable[[str], bytes],
        scores: Callable[..., tuple[int, float]],
        ascii: tuple[Callable[..., tuple[int, float]], tuple[Any, ...]] | None = None,
    ) -> None:
        self.classes = tuple(classes)
        self.tables = tables
        self.encode = encode  # py3langid's own: the bytes its classify reads
        self.scores = scores  # the compiled language_scores
        # ASCII text's (language_scores_ascii, the DFA packed for it: language_dfa.py),
        # where the DFA packs
        self.ascii = ascii

    @classmethod
    def of(cls, identifier: Any) -> CompiledIdentifier | None:
        """``identifier``'s tables read by the compiled loops, or ``None`` (see the class)."""
        loops = native()
        if loops is None or not _compiled_layout(identifier):
            return None
        import numpy as np

        from tailorbot.models.intent.language_dfa import ascii_packed

        output = np.asarray(identifier.tk_output, dtype=np.int32)
        # A copy numpy allocates, on huge pages where the kernel has them (numpy asks for
        # them from 4 MB on): a message walks the 39 MB table at random, a TLB miss a byte
        # on small pages. py3langid's array is dropped with its identifier.
        nextmove = np.array(identifier.tk_nextmove, dtype=np.uint32)
        tables = (nextmove, identifier.tk_row, output)
        ptc, pc = identifier.nb_ptc, identifier.nb_pc
        packed = ascii_packed(*tables, ptc)
        return cls(
            identifier.nb_classes,
            (*tables, ptc, pc),
            identifier._encode,
            loops.language_scores,
            None if packed is None else (loops.language_scores_ascii, (*packed, pc)),
        )

    def classify(self, text: str) -> tuple[str, float]:
        """The most probable language of ``text`` and its normalized probability."""
        data = self.encode(text)
        if self.ascii is not None and data.isascii():
            scores, tables = self.ascii
        else:
            scores, tables = self.scores, self.tables
        index, probability = scores(data, *tables)
        return self.classes[index], probability


def _compiled_layout(identifier: Any) -> bool:
    """Whether ``identifier`` holds what csrc/language.c reads: normalized probabilities, no
    aliased classes, its text encoding, a float16 feature table and float32 priors, a
    uint32/uint16 DFA."""
    import numpy as np

    ptc, pc = getattr(identifier, "nb_ptc", None), getattr(identifier, "nb_pc", None)
    nextmove, row = getattr(identifier, "tk_nextmove", None), getattr(identifier, "tk_row", None)
    return (
        getattr(identifier, "_norm_probs", False) is True
        and callable(getattr(identifier, "_encode", None))
        and not getattr(identifier, "_alias_pairs", True)
        and isinstance(ptc, np.ndarray)
        and ptc.dtype == np.float16
        and ptc.ndim == 2
        and ptc.flags.c_contiguous
        and isinstance(pc, np.ndarray)
        and pc.dtype == np.float32
        and pc.shape == (ptc.shape[1],)
        and getattr(nextmove, "typecode", None) == "I"
        and getattr(row, "typecode", None) == "H"
        and len(getattr(identifier, "tk_output", ())) == len(row)  # type: ignore[arg-type]
    )
