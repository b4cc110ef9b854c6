"""Pick the response template for a decision and render the chosen variant.

>>> from tailorbot.kb.model import KnowledgeBase, ResponseTemplate, Variants
>>> kb = KnowledgeBase([], [ResponseTemplate(id="t-default", default=True, variants=Variants(
...     concise="Hi {name}: {article_title}.", step_by_step="1. {article_title}",
...     empathetic="Sorry, {name}."))])
>>> composer = ResponseComposer(kb)
>>> t = composer.template_for("card_arrival", fallback=False)
>>> composer.render(t, "concise", None, {"name": "Ada"}, None, [])
'Hi Ada: our help article.'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tailorbot.kb.model import FALLBACK_TEMPLATE_ID, KnowledgeBase, ResponseTemplate


class ResponseComposer:
    """Templates of one knowledge base; ``fallback`` answers use the template ``fallback``."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        # Every variant name of the KB, first-declared first (each template offers its own).
        self.variant_names: list[str] = list(
            dict.fromkeys(name for t in kb.templates for name in t.variants.names)
        )
        if kb.default_template is None:
            raise ValueError("the knowledge base needs a default template (default: true)")

    def template_for(self, intent: str, fallback: bool) -> ResponseTemplate:
        if fallback:
            template = self.kb.template(FALLBACK_TEMPLATE_ID)
            if template is not None:
                return template
        found = self.kb.template_for(intent)
        return found if found is not None else self.kb.default_template  # type: ignore[return-value]

    def render(
        self,
        template: ResponseTemplate,
        variant: str,
        view: Mapping[str, Any] | None,
        profile: Mapping[str, Any] | None,
        context: Any,
        articles: Sequence[Any],
    ) -> str:
        profile = profile or {}
        products = profile.get("products") or []
        product = getattr(context, "product", None) or (products[0] if products else None)
        last_title = None
        if view is not None and view.get("articles_viewed"):
            last = self.kb.article(view["articles_viewed"][0])
            last_title = last.title if last is not None else None
        values = {
            "name": profile.get("name"),
            "tier": profile.get("tier"),
            "product": product,
            "article_title": articles[0].title if articles else None,
            "last_article_title": last_title,
        }
        return template.render(variant, values)
