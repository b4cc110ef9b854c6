"""The knowledge base: articles and response templates in YAML, validated and rendered."""

from tailorbot.kb.loader import KBError, default_kb_dir, default_labels_file, load_kb, read_labels
from tailorbot.kb.manifest import MANIFEST_FILE, Brand, CustomPlaceholder, KBManifest
from tailorbot.kb.model import (
    FALLBACK_TEMPLATE_ID,
    VARIANTS,
    Article,
    Audience,
    KnowledgeBase,
    ResponseTemplate,
    Variants,
)
from tailorbot.kb.render import PLACEHOLDERS, PlaceholderError, placeholders, render
from tailorbot.kb.validate import KBIssue, KBReport, check_kb

__all__ = [
    "FALLBACK_TEMPLATE_ID",
    "PLACEHOLDERS",
    "VARIANTS",
    "Article",
    "Audience",
    "Brand",
    "CustomPlaceholder",
    "KBManifest",
    "MANIFEST_FILE",
    "KBError",
    "KBIssue",
    "KBReport",
    "KnowledgeBase",
    "PlaceholderError",
    "ResponseTemplate",
    "Variants",
    "check_kb",
    "default_kb_dir",
    "default_labels_file",
    "load_kb",
    "placeholders",
    "read_labels",
    "render",
]
