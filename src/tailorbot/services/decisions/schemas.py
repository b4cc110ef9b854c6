"""Request and response models of the decision plane (POST /v1/personalize, /v1/feedback)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from tailorbot.errors import InvalidInput, PayloadTooLarge, Problem
from tailorbot.events.schema import METADATA_KEY_CHARS, Identifier
from tailorbot.events.values import free_pairs_problem

CONTEXT_METADATA_KEYS = 32
CONTEXT_METADATA_VALUE_CHARS = 512


class PersonalizeContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_\-]+$")] = "chat"
    language: Annotated[str, Field(max_length=16)] | None = None
    product: Annotated[str, Field(max_length=64)] | None = None
    metadata: dict[Annotated[str, Field(max_length=64)], str | int | float | bool | None] = Field(
        default_factory=dict, max_length=CONTEXT_METADATA_KEYS
    )

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_bounded(cls, value: Any) -> Any:
        # The bounds of an event's metadata, before pydantic's union would turn a 2**70 into a
        # float and accept a NaN.
        problem = free_pairs_problem(
            "metadata",
            value,
            max_keys=CONTEXT_METADATA_KEYS,
            max_key_chars=METADATA_KEY_CHARS,
            max_value_chars=CONTEXT_METADATA_VALUE_CHARS,
        )
        if problem is not None:
            raise ValueError(problem)
        return value


class PersonalizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    session_id: Identifier
    message: str = Field(
        min_length=1, description="The customer's message (redacted before logging)."
    )
    last_bot_message: str | None = Field(
        None,
        description="The bot's last message before this one, as the customer saw it: a short "
        "reply (yes, no, it still hasn't) is read as the answer to it. Null: not known (the "
        "bot's logged messages are used); empty: the bot has said nothing yet. Not logged.",
    )
    context: PersonalizeContext = Field(default_factory=PersonalizeContext)

    @field_validator("message")
    @classmethod
    def _not_only_nul(cls, value: str) -> str:
        # The logged message event drops U+0000 (events/values.py): nothing would be left.
        if "\x00" in value and not value.replace("\x00", ""):
            raise ValueError("message holds nothing but NUL characters")
        return value


def check_text_length(field: str, text: str | None, limit: int) -> None:
    """Raise the 413 of a text over ``limit`` characters, naming ``field`` as the caller's
    input names it (the decision service's, or an integration's own payload field).

    >>> check_text_length("content", "hello", 5)
    >>> check_text_length("content", "hello!", 5)
    Traceback (most recent call last):
    tailorbot.errors.PayloadTooLarge: content is 6 characters; at most 5 are accepted
    """
    if text is not None and len(text) > limit:
        reason = f"{field} is {len(text)} characters; at most {limit} are accepted"
        raise PayloadTooLarge(reason, problems=[Problem(None, field, reason)])


def personalize_request_from(
    sources: Mapping[str, str], refusal: str, **fields: Any
) -> PersonalizeRequest:
    """A :class:`PersonalizeRequest` built from another API's payload (Rasa's NLG request,
    a Chatwoot webhook): what it refuses is :class:`InvalidInput` with ``refusal`` as its
    message, each problem naming the payload's own field (``sources``: request field ->
    payload field), so that it answers 422, never a server error.

    >>> sources = {"user_id": "sender.id", "message": "content"}
    >>> personalize_request_from(sources, "refused", user_id="u 1", session_id="s", message="hi")
    Traceback (most recent call last):
    tailorbot.errors.InvalidInput: refused
    """
    try:
        return PersonalizeRequest(**fields)
    except ValidationError as exc:
        problems = [
            Problem(None, sources.get(str(next(iter(error["loc"]), "")), "(body)"), error["msg"])
            for error in exc.errors(include_url=False)
        ]
        raise InvalidInput(refusal, problems=problems) from None


class IntentRank(BaseModel):
    name: str
    confidence: float


class IntentOut(BaseModel):
    name: str
    confidence: float
    ranking: list[IntentRank]
    language: str | None = Field(None, description="Detected language of the message.")
    follow_up: str | None = Field(
        None,
        description="affirm, deny or continuation when a short reply was read in the "
        "conversation's context (then name is its topic: the intent the bot's question "
        "names, else the previous intent).",
    )


class FallbackOut(BaseModel):
    triggered: bool
    reason: str | None = Field(
        None,
        description="low_confidence, small_margin, out_of_scope, unfamiliar (unlike every "
        "training message; only with a similarity floor), unsupported_language or "
        "human_handoff (the customer asked for a person).",
    )


class ArticleOut(BaseModel):
    id: str
    title: str
    score: float
    reasons: list[str]
    url: str | None = Field(None, description="The article's public page, to link or cite.")
    snippet: str = Field("", description="A short plain-text summary, e.g. for a RAG prompt.")


class ResponseOut(BaseModel):
    template_id: str
    variant: str
    text: str
    propensity: float = Field(description="Probability the policy had of choosing this variant.")


class UserOut(BaseModel):
    segment: str | None
    consent: bool = Field(description="Personalization consent; false: no per-user features used.")
    personalized: bool


class PersonalizeResponse(BaseModel):
    decision_id: str
    intent: IntentOut
    fallback: FallbackOut
    articles: list[ArticleOut]
    response: ResponseOut
    user: UserOut
    experiment_arm: str = Field(
        description="personalized, control (the A/B holdout) or pre_period (before the start)."
    )
    model_versions: dict[str, str]
    timings_ms: dict[str, float]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: Identifier
    # strict: a true or "5" is refused, never learned from as CSAT 1 or 5
    rating: StrictInt | None = Field(None, ge=1, le=5, description="CSAT 1-5.")
    resolved: StrictBool | None = None
    helpful_article_id: Identifier | None = None
    unhelpful_article_id: Identifier | None = None
    clicked_article_id: Identifier | None = None

    @model_validator(mode="after")
    def _some_signal(self) -> FeedbackRequest:
        if not self.signals():
            raise ValueError(
                "no signal: send at least one of rating, resolved, helpful_article_id, "
                "unhelpful_article_id, clicked_article_id"
            )
        if self.helpful_article_id is not None and (
            self.helpful_article_id == self.unhelpful_article_id
        ):
            raise ValueError(
                "helpful_article_id and unhelpful_article_id name the same article: send one"
            )
        return self

    def signals(self) -> dict[str, Any]:
        return self.model_dump(exclude={"decision_id"}, exclude_none=True)


class FeedbackResponse(BaseModel):
    decision_id: str
    applied: bool = Field(
        description="False when nothing was learned: the decision already had its outcome "
        "(idempotent; a signal of a kind it did not have yet, such as a rating after a click, "
        "is still logged and counted in the A/B readout), or this one carried no outcome "
        "(only a click or a vote on an article the decision did not offer: its event is "
        "logged, and the decision still takes its first outcome)."
    )
    reward: float | None = Field(None, description="Reward the variant policy learned from.")


class MeanEstimate(BaseModel):
    n: int
    mean: float | None
    ci95: tuple[float, float] | None = Field(default=None, description="95 % confidence interval.")


class ArmReport(BaseModel):
    feedback: int = Field(description="Decisions of this arm with feedback.")
    csat: MeanEstimate = Field(description="Mean rating (1-5), user-clustered interval.")
    resolution_rate: MeanEstimate = Field(description="Share of resolved=true.")
    reward: MeanEstimate = Field(description="Mean bandit reward in [0, 1].")


class CupedLift(BaseModel):
    estimate: float
    ci95: tuple[float, float]
    always_valid_ci95: tuple[float, float] | None = None


class Lift(BaseModel):
    estimate: float = Field(description="personalized - control, per-contact means.")
    ci95: tuple[float, float] = Field(description="95 % interval, clustered by user.")
    always_valid_ci95: tuple[float, float] | None = Field(
        None, description="95 % confidence sequence: valid however often one looks."
    )
    se: float | None = None
    n: int = Field(description="Outcomes in both arms.")
    clusters: int = Field(description="User buckets with outcomes in both arms.")
    cuped: CupedLift | None = Field(
        None, description="Adjusted with the users' pre-period outcomes; null without one."
    )


class ExperimentReport(BaseModel):
    name: str
    holdout: float = Field(description="Share of users served by the non-personalized control.")
    control: str = Field(
        description="The control policy: channel_language_tier_bandit (learns the best variant "
        "per channel, language and tier group from the control arm's feedback; nothing of the "
        "customer's history) or fixed_variant:<name>."
    )
    clusters: str = Field(description="What the intervals are clustered by.")
    pre_period: bool = Field(False, description="Whether the experiment has a start time.")
    arms: dict[str, ArmReport]
    csat_lift: Lift | None = Field(None, description="personalized - control CSAT.")
    resolution_lift: Lift | None = None
    reward_lift: Lift | None = None
