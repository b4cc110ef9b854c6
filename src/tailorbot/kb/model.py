"""Knowledge-base records (pydantic) and the loaded :class:`KnowledgeBase` with its lookups.

A KB is a folder of YAML files; each file holds ``articles:`` and/or ``templates:`` lists.

* An **article** answers one or more intents: ``id``, ``title``, Markdown ``body``,
  ``intents``, optional ``tags``, ``audience`` (``tiers`` / ``languages``; empty = everyone),
  for troubleshooting ordered ``steps``, and for citing it (a RAG prompt, a link in the
  chat) a public ``url`` and a short ``snippet`` (default: the body's first sentences).
* A **response template** words the bot's reply for some intents in one or more named
  variants (the bundled KB uses ``concise``, ``step_by_step``, ``empathetic``; the
  template's variants are the arms the bandit picks from) with
  placeholders such as ``{name}`` and ``{article_title}`` (:mod:`tailorbot.kb.render`).
  It may name the ``article`` it is written around; one template may be the ``default``,
  used for intents without a template of their own, and the template with id ``fallback``
  words the hand-over when the intent model's fallback fires (it needs no intents).
* The root ``kb.yaml`` may also name the **brand** and the KB's own **placeholders**
  (:mod:`tailorbot.kb.manifest`).

>>> kb = KnowledgeBase(
...     [Article(id="kb-card-arrival", title="Where is my card?", body="Cards take 3-5 days.",
...              intents=["card_arrival"])],
...     [ResponseTemplate(id="t-default", default=True, variants=Variants(
...         concise="See {article_title}.", step_by_step="1. Open {article_title}.",
...         empathetic="Sorry {name}! See {article_title}."))])
>>> [a.id for a in kb.articles_for("card_arrival", tier="gold", language="en")]
['kb-card-arrival']
>>> kb.template_for("card_arrival").render("empathetic", {"article_title": "Where is my card?"})
'Sorry there! See Where is my card?.'
>>> kb.article_snippet(kb.article("kb-card-arrival"))
'Cards take 3-5 days.'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from tailorbot.config import BUILTIN_INTENTS, VARIANT_PATTERN
from tailorbot.kb.manifest import KBManifest, Url
from tailorbot.kb.render import placeholders, render

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]
VARIANTS = ("concise", "step_by_step", "empathetic")  # the bundled KB's variants
VARIANT_NAME = re.compile(VARIANT_PATTERN)
# out_of_scope: the bot hands over; the built-in conversational intents get a template answer
NO_ARTICLE_INTENTS = frozenset({"out_of_scope", *BUILTIN_INTENTS})
FALLBACK_TEMPLATE_ID = "fallback"
SNIPPET_CHARS = 300
VARIANT_TEXTS_MAX = 4096  # the (template, variant) texts a knowledge base remembers
KNOWN_PLACEHOLDERS = "known_placeholders"  # validation-context key: the KB's placeholder names

_MARKDOWN = re.compile(r"[*_`#>\[\]]|\(https?://[^)]*\)")
_WHITESPACE = re.compile(r"\s+")
_LANGUAGE_FALLBACK = re.compile(r"^fallback-[a-z]{2}$")  # fallback-de: the fallback in German


def is_fallback_template_id(template_id: str) -> bool:
    """``fallback``, or ``fallback-<language>`` (an ISO 639-1 code) for one language."""
    return template_id == FALLBACK_TEMPLATE_ID or bool(_LANGUAGE_FALLBACK.match(template_id))


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Audience(_Record):
    """Who an article is for; an empty list means everyone."""

    tiers: list[Label] = Field(default_factory=list)
    languages: list[Label] = Field(default_factory=list)

    def matches(self, tier: str | None = None, language: str | None = None) -> bool:
        """True when the article suits that tier and language (None = not known: any)."""
        tier_ok = tier is None or not self.tiers or tier in self.tiers
        language_ok = language is None or not self.languages or language in self.languages
        return tier_ok and language_ok


class Article(_Record):
    id: Identifier
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1, description="Markdown.")]
    intents: Annotated[list[Identifier], Field(min_length=1)]
    tags: list[Label] = Field(default_factory=list)
    audience: Audience = Field(default_factory=Audience)
    steps: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Ordered troubleshooting steps."
    )
    url: Url | None = Field(None, description="Public page of the article.")
    snippet: Annotated[str, Field(min_length=1, max_length=SNIPPET_CHARS)] | None = Field(
        None, description="A short plain-text summary to cite; default: from the body."
    )


def _known_placeholders(text: str, info: ValidationInfo) -> str:
    # The KB's own placeholders come through the validation context (kb check); without
    # one only the built-in names are allowed.
    placeholders(text, (info.context or {}).get(KNOWN_PLACEHOLDERS))  # PlaceholderError names it
    return text


VariantText = Annotated[str, Field(min_length=1), AfterValidator(_known_placeholders)]


class Variants(BaseModel):
    """The wordings of one template, by variant name: as many as the template needs, with any
    names (``concise``, ``step_by_step``, ``formal_de``, ...). They are the arms the bandit
    picks from for this template; a name shared by several templates is one style, and
    shares the bandit's statistics across them.

    >>> Variants(short="Hi.", detailed="Hello! {article_title}").names
    ['short', 'detailed']
    """

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)
    __pydantic_extra__: dict[str, VariantText]

    @model_validator(mode="after")
    def _valid(self) -> Variants:
        extra = self.__pydantic_extra__ or {}
        if not extra:
            raise ValueError("a template needs at least one variant")
        for name in extra:
            if not VARIANT_NAME.match(name):
                raise ValueError(
                    f"variant name {name!r} must match {VARIANT_NAME.pattern} (letters, "
                    "digits, '_', '-', '.'; at most 64)"
                )
        return self

    @property
    def names(self) -> list[str]:
        """Variant names in the order the KB declares them."""
        return list(self.__pydantic_extra__ or {})

    def text(self, variant: str) -> str:
        extra = self.__pydantic_extra__ or {}
        if variant not in extra:
            raise ValueError(f"unknown variant {variant!r}; known: {', '.join(extra)}")
        return str(extra[variant])


class ResponseTemplate(_Record):
    id: Identifier
    intents: list[Identifier] = Field(default_factory=list)
    default: bool = Field(False, description="Used for intents without a template of their own.")
    article: Identifier | None = Field(
        None, description="The article this reply is written around."
    )
    variants: Variants

    def render(
        self,
        variant: str,
        context: Mapping[str, object] | None = None,
        defaults: Mapping[str, str] | None = None,
    ) -> str:
        """The variant's text with placeholders filled (:func:`tailorbot.kb.render.render`)."""
        return render(self.variants.text(variant), context, defaults)


class KnowledgeBase:
    """Articles and templates with lookups by id and by intent.

    Build it with :func:`tailorbot.kb.loader.load_kb` (which validates cross-references); the
    constructor only indexes what it is given.
    """

    def __init__(
        self,
        articles: Iterable[Article] = (),
        templates: Iterable[ResponseTemplate] = (),
        sources: Mapping[str, str] | None = None,
        manifest: KBManifest | None = None,
    ) -> None:
        self.manifest = manifest or KBManifest()
        self.articles: tuple[Article, ...] = tuple(articles)
        self.templates: tuple[ResponseTemplate, ...] = tuple(templates)
        self.sources = dict(sources or {})  # "article:<id>" / "template:<id>" -> file name
        self._articles = {a.id: a for a in self.articles}
        self._defaults = self.manifest.defaults()  # the manifest is frozen
        self._own_placeholders = bool(self.manifest.placeholders)
        # (id of a template, variant) -> (the template, the variant's text): see render
        self._variant_texts: dict[tuple[int, str], tuple[ResponseTemplate, str]] = {}
        # article id -> (url, snippet): worked out once, cited on every decision
        self._citations: dict[str, tuple[str | None, str]] = {}
        self._templates = {t.id: t for t in self.templates}
        self._by_intent: dict[str, list[Article]] = {}
        for article in self.articles:
            for intent in article.intents:
                self._by_intent.setdefault(intent, []).append(article)
        # Read-only views for hot loops (the recommender's candidates): plain dicts, not
        # proxies, since a lookup through a mappingproxy is a method call.
        self.articles_by_id: Mapping[str, Article] = self._articles
        self.article_ids_by_intent: Mapping[str, frozenset[str]] = {
            intent: frozenset(a.id for a in answering)
            for intent, answering in self._by_intent.items()
        }
        self._template_by_intent: dict[str, ResponseTemplate] = {}
        for template in self.templates:
            for intent in template.intents:
                self._template_by_intent.setdefault(intent, template)
        self.default_template = next((t for t in self.templates if t.default), None)
        self.fallback_template = self._templates.get(FALLBACK_TEMPLATE_ID)

    def __repr__(self) -> str:
        return f"KnowledgeBase({len(self.articles)} articles, {len(self.templates)} templates)"

    def article(self, article_id: str) -> Article | None:
        return self._articles.get(article_id)

    def article_url(self, article: Article) -> str | None:
        """The article's own ``url``, else one below the brand's ``help_url`` (or None)."""
        return article.url or self.manifest.article_url(article.id)

    def article_snippet(self, article: Article) -> str:
        """The article's ``snippet``, else its body's opening as one line of plain text."""
        return article.snippet or _snippet(article.body)

    def citation(self, article_id: str) -> tuple[str | None, str] | None:
        """:meth:`article_url` and :meth:`article_snippet` of this KB's article
        ``article_id`` (None: it has none), worked out once: its articles are frozen, and
        every decision cites some.

        >>> pin = Article(id="kb-pin", title="PIN", body="At any cash machine.",
        ...               intents=["change_pin"])
        >>> kb = KnowledgeBase([pin])
        >>> kb.citation("kb-pin"), kb.citation("kb-gone")
        ((None, 'At any cash machine.'), None)
        """
        found = self._citations.get(article_id)
        if found is None:
            article = self._articles.get(article_id)
            if article is None:
                return None
            found = self._citations[article_id] = (
                self.article_url(article),
                self.article_snippet(article),
            )
        return found

    def placeholder_values(self, profile: Mapping[str, Any] | None) -> dict[str, Any]:
        """The KB's own placeholders filled from the customer's profile."""
        return self.manifest.values(profile)

    def render(
        self,
        template: ResponseTemplate,
        variant: str,
        context: Mapping[str, object],
        profile: Mapping[str, Any] | None = None,
    ) -> str:
        """Render with this KB's brand and placeholders: ``context`` (built-in placeholders)
        wins over the profile's values, which win over the KB's defaults.

        ``template.render``'s text, its variant's text remembered per template object (a
        template is frozen): every decision renders one, and reading it through the
        template's pydantic fields took more than filling it in."""
        values = {**self.manifest.values(profile), **context} if self._own_placeholders else context
        key = (id(template), variant)
        found = self._variant_texts.get(key)
        if found is None or found[0] is not template:  # an id may be another object's later
            found = (template, template.variants.text(variant))  # ValueError: no such variant
            if len(self._variant_texts) >= VARIANT_TEXTS_MAX:  # bounded: templates x variants
                self._variant_texts.clear()
            self._variant_texts[key] = found
        return render(found[1], values, self._defaults)

    def template(self, template_id: str) -> ResponseTemplate | None:
        return self._templates.get(template_id)

    def articles_for(
        self, intent: str, *, tier: str | None = None, language: str | None = None
    ) -> list[Article]:
        """Articles answering ``intent`` that suit the audience, in KB order."""
        return [a for a in self._by_intent.get(intent, ()) if a.audience.matches(tier, language)]

    def template_for(self, intent: str) -> ResponseTemplate | None:
        """The intent's own template, else the default one (None when there is neither)."""
        return self._template_by_intent.get(intent, self.default_template)

    def intents(self) -> set[str]:
        """Intents that have at least one article."""
        return set(self._by_intent)

    def templated_intents(self) -> set[str]:
        """Intents with a template of their own."""
        return set(self._template_by_intent)

    def uncovered(self, labels: Sequence[str]) -> list[str]:
        """Labels without any article (``out_of_scope`` aside)."""
        return [
            label
            for label in labels
            if label not in NO_ARTICLE_INTENTS and label not in self._by_intent
        ]


def _snippet(body: str) -> str:
    """A body's opening as one line of plain text, cut at a sentence end when one is near."""
    text = _WHITESPACE.sub(" ", _MARKDOWN.sub("", body)).strip()
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text[: SNIPPET_CHARS - 1]
    sentence_end = cut.rfind(". ")
    if sentence_end >= SNIPPET_CHARS // 3:
        return cut[: sentence_end + 1]
    return cut[: cut.rfind(" ")].rstrip(",;:") + "…"
