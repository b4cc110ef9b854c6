"""deploy/prometheus/alerts.yml and deploy/grafana/tailorbot.json refer only to metrics that
tailorbot exports, under their exposed names and labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from tailorbot._tallies import TalliedCounter, TalliedHistogram
from tailorbot.metrics import Metrics

DEPLOY = Path(__file__).parents[2] / "deploy"
NAME = re.compile(r"\btailorbot_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(tailorbot_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|ignoring|on)\s*\(([^)]*)\)")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def exported() -> dict[str, set[str]]:
    """Every series name /metrics can show, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if isinstance(metric, MetricWrapperBase):
            name, kind, labels = metric._name, metric._type, set(metric._labelnames)
        elif isinstance(metric, TalliedCounter | TalliedHistogram):
            name, kind, labels = metric.name, metric.kind, set(metric.labelnames)
        else:
            continue
        for suffix in SUFFIXES[kind]:
            extra = {"le"} if suffix == "_bucket" else set()
            names[name + suffix] = labels | extra
    return names


def problems_of(expr: str, where: str) -> list[str]:
    names, problems = exported(), []
    used = set(NAME.findall(expr))
    if not used:
        problems.append(f"{where}: no tailorbot metric in {expr!r}")
    for name in sorted(used - set(names)):
        problems.append(f"{where}: {name} is not exported")
    for name, matchers in SELECTOR.findall(expr):
        for label in MATCHER.findall(matchers):
            if name in names and label not in names[name]:
                problems.append(f"{where}: {name} has no label {label!r}")
    known = set().union(*(names.get(n, set()) for n in used))
    for group in GROUPING.findall(expr):
        for label in filter(None, (g.strip() for g in group.split(","))):
            if label not in known:
                problems.append(f"{where}: no metric of the expression has label {label!r}")
    if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
        problems.append(f"{where}: unbalanced brackets in {expr!r}")
    return problems


def test_the_checker_catches_a_wrong_name_and_a_wrong_label() -> None:
    assert problems_of("sum(rate(tailorbot_decisions_total[5m]))", "ok") == []
    assert problems_of("tailorbot_decisions", "x") == ["x: tailorbot_decisions is not exported"]
    assert problems_of('tailorbot_processor_lag{route="/"}', "x") == [
        "x: tailorbot_processor_lag has no label 'route'"
    ]
    assert problems_of("sum by (zone) (tailorbot_processor_lag)", "x") == [
        "x: no metric of the expression has label 'zone'"
    ]


def alert_rules() -> list[dict]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_are_complete_and_use_exported_metrics() -> None:
    rules = alert_rules()
    problems = []
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in {"page", "warn"}
        assert rule["annotations"]["summary"]
        problems += problems_of(rule["expr"], rule["alert"])
    assert problems == []
    watched = " ".join(rule["expr"] for rule in rules)
    for needed in (
        "tailorbot_processor_lag",  # lag
        'status=~"5.."',  # 5xx rate
        'status=~"429|503"',  # refusals
        "histogram_quantile(0.99",  # p99 latency
        'outcome="fallback"',  # fallback-rate jump
        "tailorbot_drift_psi",  # drift
        "tailorbot_archive_dead_letters_total",  # dead letters
    ):
        assert needed in watched, needed


@pytest.fixture(scope="module")
def grafana() -> dict:
    return json.loads((DEPLOY / "grafana" / "tailorbot.json").read_text())


def test_grafana_panels_use_exported_metrics(grafana: dict) -> None:
    problems = []
    for panel in grafana["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            problems += problems_of(target["expr"], panel["title"])
    assert problems == []
    assert len({p["id"] for p in grafana["panels"]}) == len(grafana["panels"])


def test_grafana_covers_the_built_in_dashboard(grafana: dict) -> None:
    exprs = " ".join(t["expr"] for p in grafana["panels"] for t in p["targets"])
    for metric in (
        "tailorbot_decisions_total",
        "tailorbot_request_latency_seconds_bucket",
        "tailorbot_intent_predictions_total",
        "tailorbot_fallbacks_total",
        'tailorbot_events_ingested_total{type="handoff"}',
        "tailorbot_feedback_rating_points_total",
        "tailorbot_feedback_resolutions_total",
        "tailorbot_variant_choices_total",
        "tailorbot_bandit_explorations_total",
        "tailorbot_drift_psi",
        "tailorbot_model_info",
        "tailorbot_processor_lag",
    ):
        assert metric in exprs, metric


def test_the_worker_families_merged_into_metrics_are_families_tailorbot_has() -> None:
    """merged_exposition takes WORKER_FAMILIES from the worker by name: a renamed metric would
    silently fall back to the API's empty copy."""
    from tailorbot.metrics import WORKER_FAMILIES

    names = {family.name for family in Metrics().registry.collect()}
    assert not WORKER_FAMILIES - names, sorted(WORKER_FAMILIES - names)
