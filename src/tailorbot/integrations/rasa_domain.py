"""The bot's own responses, from its Rasa domain, rendered as Rasa renders them.

With an NLG endpoint Rasa sends no domain texts: for a response that tailorbot does not
personalize (a form's question, ``utter_goodbye``...) it answers with the domain's response
(``rasa_domain``), chosen the way Rasa's own generator chooses: among the variations for
the request's channel, else those without one, conditional ones whose slot conditions hold
before unconditional ones, one at random; ``{placeholders}`` of its text come from the
tracker's slots and the request's arguments (arguments win).

>>> gold = [{"type": "slot", "name": "plan", "value": "gold"}]
>>> buttons = [{"title": "Gold", "payload": "/gold"}]
>>> responses = RasaResponses({
...     "utter_ask_email": [{"text": "Your e-mail, {name}?"}],
...     "utter_plan": [
...         {"text": "Any plan."},
...         {"text": "Gold, {name}!", "condition": gold},
...         {"text": "Tap a plan", "channel": "slack", "buttons": buttons},
...     ],
... })
>>> "utter_ask_email" in responses, "utter_goodbye" in responses
(True, False)
>>> responses.render("utter_ask_email", {"name": "Ada"}, {}, "rest")["text"]
'Your e-mail, Ada?'
>>> responses.render("utter_plan", {"plan": "Gold"}, {"name": "Bo"}, "rest")["text"]
'Gold, Bo!'
>>> responses.render("utter_plan", {"plan": "silver"}, {}, "slack")["buttons"]
[{'title': 'Gold', 'payload': '/gold'}]
>>> responses.render("utter_ask_email", {}, {}, "rest")["text"]  # no value: left as it is
'Your e-mail, {name}?'
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tailorbot._config_checks import rasa_domain_responses

Variation = Mapping[str, Any]

_PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")  # Rasa's own pattern
_SELECTION_KEYS = ("condition", "channel")  # how Rasa picks a variation, not what it shows
_RANDOM = random.Random()


class RasaResponses:
    """``responses`` as a Rasa domain has them (``{name: [variation, ...]}``); ``rng`` picks
    among the variations that fit (a seeded one for tests; default: an unseeded one)."""

    def __init__(
        self, responses: Mapping[str, Sequence[Variation]], rng: random.Random | None = None
    ) -> None:
        self.responses = responses
        self.rng = rng

    @classmethod
    def from_path(cls, path: str | Path, rng: random.Random | None = None) -> RasaResponses:
        """The responses of a domain file, or of the YAML files under a directory; a
        ValueError names the file that is wrong and why."""
        return cls(rasa_domain_responses(Path(path)), rng)

    def __contains__(self, name: object) -> bool:
        return name in self.responses

    def variations(
        self, name: str, slots: Mapping[str, Any], channel: str | None
    ) -> list[Variation]:
        """The variations Rasa would choose among, in its order of preference: conditional
        ones for the channel, unconditional ones for the channel, then the same two without
        a channel. A condition holds when every slot it names has its value (strings
        compared case-insensitively)."""
        fitting = [v for v in self.responses[name] if not v.get("condition") or _holds(v, slots)]
        for wanted_channel in (channel, None):
            for conditional in (True, False):
                found = [
                    v
                    for v in fitting
                    if v.get("channel") == wanted_channel
                    and bool(v.get("condition")) is conditional
                ]
                if found:
                    return found
        return []

    def render(
        self,
        name: str,
        slots: Mapping[str, Any],
        arguments: Mapping[str, Any],
        channel: str | None,
        variation_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Rasa's NLG response for ``name``: the variation with ``variation_id`` (the id
        Rasa 3.6+ sends when it picked one), else one at random among :meth:`variations`,
        with its text's placeholders filled. None when no variation fits: Rasa then utters
        nothing, as its own generator would."""
        candidates = self.variations(name, slots, channel)
        if not candidates:
            return None
        variation = next((v for v in candidates if v.get("id") == variation_id), None)
        if variation is None:
            variation = (self.rng or _RANDOM).choice(candidates)
        values = {**slots, **arguments}
        text = variation.get("text")
        body = {k: v for k, v in variation.items() if k not in _SELECTION_KEYS}
        return {
            "buttons": [],
            "image": None,
            "elements": [],
            "attachments": [],
            "custom": {},
            **body,
            "text": None if text is None else _fill(text, values),
        }


def _holds(variation: Variation, slots: Mapping[str, Any]) -> bool:
    for condition in variation.get("condition") or ():
        value, wanted = slots.get(condition["name"]), condition["value"]
        if isinstance(value, str) and isinstance(wanted, str):
            if value.casefold() != wanted.casefold():
                return False
        elif value != wanted:
            return False
    return True


def _fill(text: str, values: Mapping[str, Any]) -> str:
    """``{name}`` replaced by its value; a name without one is left as it is."""
    return _PLACEHOLDER.sub(
        lambda match: str(values[match[1]]) if match[1] in values else match[0], text
    )
