"""What other customers' sessions say about articles, kept as additive counters.

Every statistic is a sum, so the stream worker can turn each applied event into counter
deltas (:func:`deltas_for_event`) and add them with ``CounterStore.increment`` from any number
of processes; readers rebuild a :class:`CollaborativeStats` from ``CounterStore.counters``.
Offline replay uses :meth:`CollaborativeStats.learn_one`, which applies the same deltas in
memory, so both paths hold the same numbers.

Namespaces and keys (parts joined by ``|``; a ``|`` inside a part is replaced by ``/``):

* ``recs:intent`` — all customers: ``{intent}|issues`` (resolution events of sessions about
  the intent) and ``{intent}|{article}|{kind}`` with kind ``res`` (resolved the issue),
  ``up``/``down`` (helpful / unhelpful feedback), ``view`` (article opened).
* ``recs:segment_intent`` — the same per group of similar customers, the group written
  ``tier=gold`` or ``segment=business``: ``{group}|{intent}|issues``,
  ``{group}|{intent}|{article}|{kind}``. Segment popularity is summed from it at load.
* ``recs:cooc`` — item-item: ``{a}`` counts articles that helped (helpful feedback or a
  resolution) and ``{a}|{b}`` (``a < b``) pairs that helped the same customer.

``user_view`` is the user's feature view (``stream.features.feature_view``) *before* the
event is applied; only ``tier``, ``segment``, ``recent_intents`` (the latest is the issue a
resolution or a vote is about), ``articles_helpful`` and ``articles_resolved`` are read, so
any mapping with those keys will do.

>>> view = {"tier": "gold", "recent_intents": ["card_arrival"], "articles_helpful": ["kb-1"]}
>>> event = {"type": "resolution", "resolved": True, "article_id": "kb-2"}
>>> deltas = deltas_for_event(event, view)
>>> sorted(deltas["recs:intent"].items())
[('card_arrival|issues', 1.0), ('card_arrival|kb-2|res', 1.0)]
>>> deltas["recs:cooc"]
{'kb-2': 1.0, 'kb-1|kb-2': 1.0}
>>> stats = CollaborativeStats().learn_one(event, view)
>>> stats.resolution_rate("card_arrival", "kb-2", [("tier", "gold")]).hits
1.0
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from tailorbot.compiled import native
from tailorbot.models.recommend.base import EMPTY_MAPPING, UserContext

NS_INTENT = "recs:intent"
NS_SEGMENT_INTENT = "recs:segment_intent"
NS_COOC = "recs:cooc"
NAMESPACES = (NS_INTENT, NS_SEGMENT_INTENT, NS_COOC)
# The only event types with deltas: a caller can skip building a view for the others.
ARTICLE_EVENT_TYPES = frozenset({"resolution", "article_feedback", "article_viewed"})

Deltas = dict[str, dict[str, float]]
Group = tuple[str, str]  # ("tier", "gold"), ("segment", "business")
ALL: Group = ("all", "")
MEMO_MAX = 1024  # remembered answers per stats object and kind (an evidence map: ~8 KB)


def _part(value: str) -> str:
    return value.replace("|", "/")


def _group_key(group: Group) -> str:
    return f"{_part(group[0])}={_part(group[1])}"


def _parse_group(text: str) -> Group:
    kind, _, value = text.partition("=")
    return kind, value


def deltas_for_event(event: Mapping[str, Any], user_view: Mapping[str, Any] | None) -> Deltas:
    """Counter deltas for one decoded event (empty for events that say nothing about articles).

    Cheap by design: a handful of string keys, no store access.
    """
    kind = event.get("type")
    article = event.get("article_id")
    if kind == "resolution":
        signals = ["issues"] + (["res"] if event.get("resolved") and article else [])
    elif kind == "article_feedback" and article:
        signals = ["up" if event.get("helpful") else "down"]
    elif kind == "article_viewed" and article:
        signals = ["view"]
    else:
        return {}
    user = UserContext.from_view(user_view)
    intent = _part(user.session_intent or "")
    groups = [_group_key(g) for g in user.cohorts()]
    out: Deltas = {}
    for signal in signals:
        suffix = "issues" if signal == "issues" else f"{_part(str(article))}|{signal}"
        out.setdefault(NS_INTENT, {})[f"{intent}|{suffix}"] = 1.0
        for group in groups:
            out.setdefault(NS_SEGMENT_INTENT, {})[f"{group}|{intent}|{suffix}"] = 1.0
    helped = user.helped()
    if article and signals[-1] in ("res", "up") and article not in helped:
        cooc = out.setdefault(NS_COOC, {})
        cooc[_part(article)] = 1.0
        for other in sorted(helped):
            a, b = sorted((_part(article), _part(other)))
            cooc[f"{a}|{b}"] = 1.0
    return out


def add_deltas(total: Deltas, deltas: Mapping[str, Mapping[str, float]]) -> Deltas:
    """Sum ``deltas`` into ``total`` (in place; returned), so that a batch of events costs
    one ``store.increment`` per namespace.

    >>> add_deltas({"recs:cooc": {"kb-1": 1.0}}, {"recs:cooc": {"kb-1": 1.0, "kb-2": 1.0}})
    {'recs:cooc': {'kb-1': 2.0, 'kb-2': 1.0}}
    """
    for namespace, items in deltas.items():
        target = total.setdefault(namespace, {})
        for key, value in items.items():
            target[key] = target.get(key, 0.0) + value
    return total


class GroupRate(NamedTuple):
    """A smoothed rate and the raw evidence behind it (for the reason text). A named tuple,
    built cheaply (:func:`_rate`): an intent's evidence makes two for each of its articles
    whenever the memo misses, and a frozen dataclass sets each field in a call of its own."""

    rate: float
    group: Group = ALL
    hits: float = 0.0  # resolutions, or net helpful votes
    trials: float = 0.0  # issues, or readers


class CollaborativeStats:
    """Article statistics of all customers, by intent and by group of similar customers.

    Parameters
    ----------
    prior_strength
        Pseudo-count of the hierarchical smoothing: a group's rate is pulled towards the
        all-customer rate, and that towards 0, by this many imaginary issues.
    """

    def __init__(self, prior_strength: float = 5.0) -> None:
        if prior_strength <= 0:
            raise ValueError("prior_strength must be > 0")
        self.prior_strength = prior_strength
        self._raw: dict[str, dict[str, float]] = {ns: defaultdict(float) for ns in NAMESPACES}
        # (group, intent) -> issues; (group, intent) -> article -> kind -> count
        self._issues: dict[tuple[Group, str], float] = defaultdict(float)
        self._articles: dict[tuple[Group, str], dict[str, dict[str, float]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(float))
        )
        self._popular: dict[Group, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._popular_max: dict[Group, float] = defaultdict(float)
        self._helped: dict[str, float] = defaultdict(float)
        self._pairs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        # Answers of evidence() and popularity_map() by their arguments: a served stats object
        # is read-only until the next refresh replaces it, and its few (intent, groups) keys
        # repeat on every decision. apply() clears it.
        self._memo: dict[tuple[Any, ...], Mapping[str, Any]] = {}
        # cooccurrence_map()'s, apart: its keys are the customers' baskets, nearly one per
        # customer, which in one memo emptied it of the shared answers every MEMO_MAX baskets
        self._links: dict[frozenset[str], Mapping[str, tuple[float, str]]] = {}
        # ids of the nested parts this object may change; None: all (nothing is shared)
        self._owned: set[int] | None = None

    # --- building ----------------------------------------------------------------------
    @classmethod
    def from_counters(
        cls,
        counters: Mapping[str, Mapping[str, float]],
        prior_strength: float = 5.0,
        previous: CollaborativeStats | None = None,
    ) -> CollaborativeStats:
        """Rebuild from ``{namespace: {key: value}}`` (what the store's counters hold).

        ``previous``: the statistics this rebuild replaces. Their remembered answers of
        :meth:`evidence` and :meth:`popularity_map` whose counters did not change are kept:
        a server rebuilds every second while feedback comes in, and each feedback changes
        one intent's counters, so the rest would be computed again by the next decisions.
        Where the counters only grew since ``previous`` (as events and feedback add to them),
        the new statistics are ``previous`` with the growth added, sharing every part it did
        not touch (:meth:`_grown_to`): a rebuild costs what changed, not what is held, and
        exactly the counters ``previous`` holds give ``previous`` itself. A counter that fell
        or went missing (a store reset) rebuilds from scratch.
        """
        if previous is not None and previous.prior_strength != prior_strength:
            previous = None  # other smoothing: nothing of it carries over
        stats = previous._grown_to(counters) if previous is not None else None
        if stats is None:
            stats = cls(prior_strength=prior_strength)
            stats.apply({ns: dict(counters.get(ns, {})) for ns in NAMESPACES})
        if previous is not None and stats is not previous:
            # a copy first (one C call): decisions may add to the served memo meanwhile
            remembered = previous._memo.copy()
            stats._memo = {
                key: answer
                for key, answer in remembered.items()
                if stats._same_inputs(previous, key)
            }
        return stats

    def _same_inputs(self, other: CollaborativeStats, key: tuple[Any, ...]) -> bool:
        """Whether the remembered answer under ``key`` reads the same counters here as in
        ``other`` (and so would be the same answer)."""
        if key[0] == "evidence":
            _, intent, groups = key
            return all(
                self._issues.get((g, intent)) == other._issues.get((g, intent))
                and self._articles.get((g, intent)) == other._articles.get((g, intent))
                for g in (ALL, *groups)
            )
        _, groups = key  # popularity
        return all(
            self._popular.get(g) == other._popular.get(g)
            and self._popular_max.get(g) == other._popular_max.get(g)
            for g in groups
        )

    @classmethod
    def load(cls, store: Any, prior_strength: float = 5.0) -> CollaborativeStats:
        """Read the shared counters of a ``CounterStore``."""
        return cls.from_counters(read_counters(store), prior_strength)

    def learn_one(
        self, event: Mapping[str, Any], user_view: Mapping[str, Any] | None
    ) -> CollaborativeStats:
        """Apply one event in memory (offline replay); same numbers as the store path."""
        self.apply(deltas_for_event(event, user_view))
        return self

    def apply(self, deltas: Mapping[str, Mapping[str, float]]) -> None:
        """Add counter deltas (unknown namespaces are ignored)."""
        self._memo.clear()
        self._links.clear()
        for namespace, items in deltas.items():
            raw = self._raw.get(namespace)
            if raw is None:
                continue
            for key, value in items.items():
                raw[key] += value
                self._index(namespace, key.split("|"), value, raw[key])

    def _index(self, namespace: str, parts: list[str], value: float, total: float) -> None:
        """Index one counter's delta ``value``: the statistics read from that counter alone
        take its ``total``, popularity (summed over intents) adds the delta."""
        own = self._own
        if namespace == NS_COOC:
            if len(parts) == 1:
                self._helped[parts[0]] = total
            elif len(parts) == 2:
                own(self._pairs, parts[0])[parts[1]] = total
                own(self._pairs, parts[1])[parts[0]] = total
            return
        if namespace == NS_SEGMENT_INTENT:
            if len(parts) < 3:
                return
            group, parts = _parse_group(parts[0]), parts[1:]
        else:
            group = ALL
        if len(parts) == 2 and parts[1] == "issues":
            self._issues[(group, parts[0])] = total
        elif len(parts) == 3:
            intent, article, kind = parts
            own(own(self._articles, (group, intent)), article)[kind] = total
            if kind in ("res", "up"):
                counts = own(self._popular, group)
                counts[article] += value
                # Deltas only ever add (a fall rebuilds: _grown_to), so the maximum stays exact.
                self._popular_max[group] = max(self._popular_max[group], counts[article])

    def _own(self, table: dict[Any, Any], key: Any) -> Any:
        """``table[key]``, to be changed: in statistics grown from others (:meth:`_grown_to`)
        a part they share is copied first, and the copy is this object's own from then on."""
        value = table[key]
        if self._owned is not None and id(value) not in self._owned:
            value = table[key] = value.copy()  # a defaultdict's copy keeps its factory
            self._owned.add(id(value))
        return value

    def _grown_to(self, counters: Mapping[str, Mapping[str, float]]) -> CollaborativeStats | None:
        """Statistics of ``counters`` grown from these: these themselves when ``counters``
        are the ones they hold, None when a counter fell or is missing (rebuild from
        scratch), else new statistics, these plus what was added. The new ones share every
        part of these that the growth does not touch, and copy a part before they change it,
        so these (served, read by decisions meanwhile) stay as they are."""
        growth: dict[str, dict[str, float]] = {}
        for namespace in NAMESPACES:
            held, now = self._raw[namespace], counters.get(namespace, EMPTY_MAPPING)
            if not held.keys() <= now.keys():
                return None
            if held == now:  # compared in C: a namespace no write touched
                continue
            get = held.get
            added = {key: value - get(key, 0.0) for key, value in now.items() if get(key) != value}
            if any(not delta > 0.0 for delta in added.values()):
                return None
            growth[namespace] = added
        if not growth:
            return self
        grown = CollaborativeStats(self.prior_strength)
        grown._raw = {namespace: raw.copy() for namespace, raw in self._raw.items()}
        grown._issues = self._issues.copy()
        grown._articles = self._articles.copy()
        grown._popular = self._popular.copy()
        grown._popular_max = self._popular_max.copy()
        grown._helped = self._helped.copy()
        grown._pairs = self._pairs.copy()
        grown._owned = set()
        grown.apply(growth)
        return grown

    def to_counters(self) -> dict[str, dict[str, float]]:
        """The raw counters, as the store would hold them."""
        return {ns: dict(items) for ns, items in self._raw.items()}

    # --- reading -----------------------------------------------------------------------
    def _entries(self, intent: str, groups: Iterable[Group]) -> list[tuple[Group, float, Any]]:
        """``(group, issues, article counts)`` of all customers, then of each group."""
        return [
            (g, self._issues.get((g, intent), 0.0), self._articles.get((g, intent), {}))
            for g in (ALL, *groups)
        ]

    def _evidence(self, article: str, entries: list[tuple[Group, float, Any]]) -> ArticleEvidence:
        """The article's resolution rate and helpfulness: all customers' smoothed towards 0,
        each group's towards all customers'. With groups, each rate is the mean of the
        groups', and its evidence (group, hits, trials) that of the group with evidence and
        the best rate (the one that lifts the article most; the first of equals), else all
        customers'. A rate is ``(hits + m * prior) / (trials + m)``.

        One pass over the groups, their rates plain numbers: a decision computes an intent's
        evidence whenever the memo misses it (a rebuild drops the intents whose counters
        changed), and a frozen dataclass per group's rate, then the summaries with ``max``
        and ``sum``, made a miss cost about three times as much."""
        m = self.prior_strength
        _, issues, per_article = entries[0]
        counts = per_article.get(article, _EMPTY)
        hits, trials = counts.get("res", 0.0), issues
        up, down, view = counts.get("up", 0.0), counts.get("down", 0.0), counts.get("view", 0.0)
        net, readers = up - down, up + down if up + down > view else view  # max(view, up+down)
        overall = _rate((hits + m * 0.0) / (trials + m), ALL, hits, trials)
        votes = _rate((net + m * 0.0) / (readers + m), ALL, net, readers)
        if len(entries) == 1:
            return _article_evidence((overall, votes))
        # The two kinds side by side, not through a helper or an inner loop: a call per group
        # and kind was what this pass took out.
        rates = helpfulness = 0.0  # the groups' sums, added in their order
        best_rate = best_votes = None  # (rate, group, hits, trials) of the best evidence
        for group, group_issues, group_articles in entries[1:]:
            counts = group_articles.get(article, _EMPTY)
            hits, trials = counts.get("res", 0.0), group_issues
            rate = (hits + m * overall.rate) / (trials + m)
            rates += rate
            if hits and (
                best_rate is None
                or rate > best_rate[0]
                or (rate == best_rate[0] and trials > best_rate[3])
            ):
                best_rate = (rate, group, hits, trials)
            up, down, view = (
                counts.get("up", 0.0), counts.get("down", 0.0), counts.get("view", 0.0)
            )  # fmt: skip
            net, readers = up - down, up + down if up + down > view else view
            rate = (net + m * votes.rate) / (readers + m)
            helpfulness += rate
            if net and (
                best_votes is None
                or rate > best_votes[0]
                or (rate == best_votes[0] and readers > best_votes[3])
            ):
                best_votes = (rate, group, net, readers)
        n = len(entries) - 1
        return _article_evidence(
            (
                _rate(rates / n, *(best_rate or overall)[1:]),
                _rate(helpfulness / n, *(best_votes or votes)[1:]),
            )
        )

    def evidence(self, intent: str, groups: Iterable[Group]) -> Mapping[str, ArticleEvidence]:
        """Rates of every article counted under ``intent``; an article missing here has a
        resolution rate and a helpfulness of 0. Shared between calls: read it, never change it."""
        groups = tuple(groups)
        key = ("evidence", intent, groups)
        found = self._memo.get(key)
        if found is None:
            entries = self._entries(intent, groups)
            articles = sorted(set().union(*(per_article for _, _, per_article in entries)))
            compiled = getattr(native(), "intent_evidence", None)  # None: not built, or before
            computed = None  # None from it: a value of a type the counters do not hold
            if compiled is not None:
                computed = compiled(
                    entries, articles, self.prior_strength, GroupRate, ArticleEvidence, ALL
                )
            if computed is None:
                computed = self.evidence_in_python(entries, articles)
            found = self._remember(key, computed)
        return found

    def evidence_in_python(
        self, entries: list[tuple[Group, float, Any]], articles: list[str]
    ) -> dict[str, ArticleEvidence]:
        """:meth:`evidence`'s answer for ``articles`` in Python (``entries``: _entries'):
        the reference the compiled ``intent_evidence`` (csrc/evidence.c) is tested against,
        and the path for what it does not read."""
        return {a: self._evidence(a, entries) for a in articles}

    def resolution_rate(self, intent: str, article: str, groups: Iterable[Group]) -> GroupRate:
        """Share of ``intent`` issues the article resolved, for these groups of customers.

        The average of the groups' smoothed rates (all customers when no group is given);
        ``group``/``hits``/``trials`` describe the group with resolutions and the best rate.
        """
        return self._evidence(article, self._entries(intent, groups)).resolution

    def helpfulness(self, intent: str, article: str, groups: Iterable[Group]) -> GroupRate:
        """Net helpful votes per reader, in (-1, 1), smoothed like :meth:`resolution_rate`."""
        return self._evidence(article, self._entries(intent, groups)).feedback

    def popularity_map(self, groups: Iterable[Group]) -> Mapping[str, float]:
        """Per article: how often it helped these groups (resolutions and helpful votes, any
        intent) over their most helpful article's count plus the prior, averaged over groups.
        Shared between calls: read it, never change it."""
        groups = tuple(groups) or (ALL,)
        key = ("popularity", groups)
        found = self._memo.get(key)
        if found is not None:
            return found
        out: dict[str, float] = {}
        for group in groups:
            counts = self._popular.get(group)
            if not counts:
                continue
            scale = 1.0 / ((self._popular_max[group] + self.prior_strength) * len(groups))
            for article, count in counts.items():
                out[article] = out.get(article, 0.0) + count * scale
        return self._remember(key, out)

    def _remember(self, key: tuple[Any, ...], value: Mapping[str, Any]) -> Mapping[str, Any]:
        if len(self._memo) >= MEMO_MAX:  # groups come from profiles: bound the keys
            self._memo.clear()
        self._memo[key] = value
        return value

    def popularity(self, article: str, groups: Iterable[Group]) -> float:
        return self.popularity_map(groups).get(article, 0.0)

    def cooccurrence_map(self, basket: Iterable[str]) -> Mapping[str, tuple[float, str]]:
        """Per article linked to the basket (articles that helped the user): the strongest
        link ``n(a, b) / (sqrt(n(a) n(b)) + 1)`` and its partner ``b``. Shared between calls:
        read it, never change it."""
        basket = frozenset(basket)
        if not basket:
            return EMPTY_MAPPING
        found = self._links.get(basket)
        if found is not None:
            return found
        out: dict[str, tuple[float, str]] = {}
        for other in sorted(basket):
            links = self._pairs.get(other)
            if not links:
                continue
            n_other = self._helped.get(other, 1.0)
            for article, together in links.items():
                n_article = self._helped.get(article, 0.0)
                if not n_article or article == other:
                    continue
                score = together / (math.sqrt(n_article * n_other) + 1.0)
                if score > out.get(article, (0.0, ""))[0]:
                    out[article] = (score, other)
        if len(self._links) >= MEMO_MAX:
            self._links.clear()
        self._links[basket] = out
        return out

    def cooccurrence(self, article: str, basket: Iterable[str]) -> tuple[float, str | None]:
        """Strongest link from the articles that helped the user to ``article``."""
        return self.cooccurrence_map(basket).get(article, (0.0, None))


def read_counters(store: Any) -> dict[str, dict[str, float]]:
    """The shared counters the statistics are built from, ``{namespace: {key: value}}``, read
    from a ``CounterStore``."""
    return {ns: store.counters(ns) for ns in NAMESPACES}


_EMPTY: dict[str, float] = {}


class ArticleEvidence(NamedTuple):
    resolution: GroupRate
    feedback: GroupRate


def _rate(rate: float, group: Group, hits: float, trials: float) -> GroupRate:
    """A :class:`GroupRate` made without its ``__new__``'s Python call (as ``_make`` does)."""
    return _new_tuple(GroupRate, (rate, group, hits, trials))


def _article_evidence(rates: tuple[GroupRate, GroupRate]) -> ArticleEvidence:
    return _new_tuple(ArticleEvidence, rates)


_new_tuple = tuple.__new__
