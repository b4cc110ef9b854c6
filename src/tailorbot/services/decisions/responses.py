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

OWN_TEMPLATE_REASONS = ("human_handoff",)  # fallbacks the intent's own template answers


class ResponseComposer:
    """Templates of one knowledge base.

    A fallback answer uses ``fallback-<language>`` when the message's language has one (the
    hand-over in the customer's language), else ``fallback``; a hand-off the customer asked
    for (reason ``human_handoff``) uses that intent's own template.
    """

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        # Every variant name of the KB, first-declared first (each template offers its own).
        self.variant_names: list[str] = list(
            dict.fromkeys(name for t in kb.templates for name in t.variants.names)
        )
        if kb.default_template is None:
            raise ValueError("the knowledge base needs a default template (default: true)")

    def template_for(
        self,
        intent: str,
        fallback: bool,
        reason: str | None = None,
        language: str | None = None,
    ) -> ResponseTemplate:
        if fallback and reason not in OWN_TEMPLATE_REASONS:
            ids = ([f"{FALLBACK_TEMPLATE_ID}-{language}"] if language else []) + [
                FALLBACK_TEMPLATE_ID
            ]
            for template_id in ids:
                template = self.kb.template(template_id)
                if template is not None:
                    return template
        found = self.kb.template_for(intent)
        return found if found is not None else self.kb.default_template  # type: ignore[return-value]

    def reply_article(
        self, template: ResponseTemplate, intent: str | None, articles: Sequence[Any]
    ) -> Any | None:
        """The offered article the reply names (``{article_title}``): the one the template is
        written around when it is offered, else the first offered article serving the
        intent, else the first offered one (None when none is offered)."""
        if not articles:
            return None
        if template.article is not None:
            for offered in articles:
                if offered.article_id == template.article:
                    return offered
        for offered in articles:
            article = self.kb.article(offered.article_id)
            if article is not None and intent is not None and intent in article.intents:
                return offered
        return articles[0]

    def render(
        self,
        template: ResponseTemplate,
        variant: str,
        view: Mapping[str, Any] | None,
        profile: Mapping[str, Any] | None,
        product: str | None,
        articles: Sequence[Any],
        reply_article: Any | None = None,
    ) -> str:
        """``product``: the one the request names (else the profile's first fills
        ``{product}``); ``reply_article`` (default: the first of ``articles``) fills
        ``{article_title}``."""
        profile = profile or {}
        if reply_article is None and articles:
            reply_article = articles[0]
        if not product:
            products = profile.get("products") or []
            product = products[0] if products else None
        last_title = None
        if view is not None and view.get("articles_viewed"):
            last = self.kb.article(view["articles_viewed"][0])
            last_title = last.title if last is not None else None
        values = {
            "name": profile.get("name"),
            "tier": profile.get("tier"),
            "product": product,
            "article_title": reply_article.title if reply_article is not None else None,
            "last_article_title": last_title,
        }
        # The KB fills its brand and its own placeholders (kb.yaml) from the profile.
        return self.kb.render(template, variant, values, profile)
