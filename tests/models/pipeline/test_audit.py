"""The audit's gate and its ``small`` flag."""

from __future__ import annotations

from tailorbot.models.pipeline.audit import NOTHING_TO_AUDIT, AuditGate, audit


def test_no_labelled_rows_fail_the_gate() -> None:
    decisions = [{"language": "en", "fallback": False}] * 50
    report = audit([], decisions, dimensions=("language",), min_rows=30)
    assert AuditGate(min_rows=30).check(report) == (False, [NOTHING_TO_AUDIT])


def test_small_counts_the_labelled_rows_the_judgement_counts() -> None:
    labelled = [{"intent": "a", "predicted": "a", "language": "de"}] * 5 + [
        {"intent": "a", "predicted": "a", "language": "en"}
    ] * 40
    decisions = [{"language": "de", "fallback": False}] * 100  # many decisions, few labels
    report = audit(labelled, decisions, dimensions=("language",), min_rows=30)
    by_name = {s["segment"]: s for s in report["dimensions"]["language"]}
    assert by_name["de"]["small"] is True and by_name["en"]["small"] is False
    assert by_name["de"]["intent_accuracy"]["best_segment"] == "en"  # judged: en only
