"""Recognizers named in settings: ``redact_recognizers`` (``"package.module:Name"``, a
:class:`Recognizer` subclass built without arguments, or an instance) and ``redact_patterns``
(``{kind: regular expression}``).

>>> [r.kind for r in recognizers_from_settings(
...     Settings.load(redact_patterns={"ticket": "TCK-[0-9]+"}))]
['ticket']
>>> load_recognizer("tailorbot.events:nothing")
Traceback (most recent call last):
...
ValueError: recognizer 'tailorbot.events:nothing': module ... has no attribute 'nothing'
"""

from __future__ import annotations

import importlib

from tailorbot.config import Settings
from tailorbot.events.recognizers.base import Recognizer
from tailorbot.events.recognizers.pattern import PatternRecognizer


def load_recognizer(spec: str) -> Recognizer:
    """The recognizer ``"package.module:Name"`` names; :class:`ValueError` saying why not."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"recognizer {spec!r}: expected 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"recognizer {spec!r}: cannot import {module_name!r}: {exc}") from None
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ValueError(
            f"recognizer {spec!r}: module {module_name!r} has no attribute {attribute!r}"
        ) from None
    if isinstance(target, type) and issubclass(target, Recognizer):
        target = target()
    if not isinstance(target, Recognizer):
        raise ValueError(
            f"recognizer {spec!r}: {type(target).__name__} is not a Recognizer "
            "(subclass tailorbot.events.recognizers.Recognizer)"
        )
    return target


def recognizers_from_settings(settings: Settings) -> list[Recognizer]:
    """The recognizers ``settings`` name, in order: imported ones, then patterns."""
    recognizers = [load_recognizer(spec) for spec in settings.redact_recognizers]
    recognizers.extend(
        PatternRecognizer(kind, pattern) for kind, pattern in settings.redact_patterns.items()
    )
    return recognizers
