"""Pluggable PII recognizers: more kinds of PII than the built-in ones, named in settings."""

from tailorbot.events.recognizers.base import Recognizer
from tailorbot.events.recognizers.pattern import PatternRecognizer
from tailorbot.events.recognizers.registry import load_recognizer, recognizers_from_settings

__all__ = ["PatternRecognizer", "Recognizer", "load_recognizer", "recognizers_from_settings"]
