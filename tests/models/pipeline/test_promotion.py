from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tailorbot.models import registry
from tailorbot.models.pipeline import promotion
from tailorbot.models.pipeline.audit import AuditGate
from tailorbot.models.pipeline.dataset import build_dataset
from tailorbot.models.pipeline.trainer import TrainingRun, train_intent
from tests.models.intent.support import small_dataset
from tests.models.pipeline.support import support_log

GATE = AuditGate(max_gap=0.10, min_rows=20)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    # 240 customers: about 75 German rows (distinct texts: copies stay in one split) in the
    # gate's held-out rows, enough for the audit to judge the German segment tightly
    events, profiles = support_log(users=240, contacts=6, seed=3)
    return build_dataset(events, profiles)


@pytest.fixture(scope="module")
def fair(rows: list[dict]) -> TrainingRun:
    return train_intent(rows, search=False, k=3)


def test_the_card_reports_cv_test_data_and_params(fair: TrainingRun, rows: list[dict]) -> None:
    card = fair.card
    assert card["data"]["rows"] == len(rows) and card["data"]["by_time"] is True
    assert card["data"]["window"]["first"] <= card["data"]["window"]["last"]
    assert 0 <= card["cv"]["accuracy"]["std"] < card["cv"]["accuracy"]["mean"] <= 1
    assert card["test"]["n"] == card["data"]["splits"]["test"] == len(fair.test_rows)
    assert {"C", "word_ngram_max", "threshold", "margin"} <= set(card["params"])
    tested = {r["message_event_id"] for r in fair.test_rows}
    newest_train = max(r["epoch"] for r in rows if r["message_event_id"] not in tested)
    assert len(tested) == len(fair.test_rows) and newest_train > 0


def test_first_candidate_is_promoted_then_rolled_back_to_nothing_refused(
    tmp_path: Path, fair: TrainingRun
) -> None:
    saved = promotion.save_candidate(tmp_path, fair)
    assert registry.current_version(tmp_path) is None  # a candidate is not served unpromoted
    result = promotion.promote(tmp_path, saved.version, GATE)
    assert result.passed and registry.current_version(tmp_path) == saved.version
    assert registry.load(tmp_path, saved.version).metadata["audit"]["passed"] is True
    with pytest.raises(promotion.PromotionRefused, match="current version already"):
        promotion.promote(tmp_path, saved.version, GATE)
    with pytest.raises(promotion.PromotionRefused, match="nothing to roll back to"):
        promotion.rollback(tmp_path)


def test_a_worse_candidate_is_refused_and_the_current_stays(tmp_path: Path) -> None:
    data = small_dataset(per_intent=30)
    banking = [{"text": t, "intent": i} for t, i in zip(data.texts, data.labels, strict=True)]
    first = promotion.save_candidate(tmp_path, train_intent(banking, search=False, k=3))
    promotion.promote(tmp_path, first.version, GATE)
    # Five rows per intent: it meets the current version's held-out rows it never saw.
    few: dict[str, list[dict]] = {}
    for row in banking:
        few.setdefault(row["intent"], []).append(row)
    scarce = [r for rows_ in few.values() for r in rows_[:5]]
    second = promotion.save_candidate(tmp_path, train_intent(scarce, search=False, k=2))
    assert second.metadata["parent"] == first.version
    with pytest.raises(promotion.PromotionRefused, match="answer_score .* below the current"):
        promotion.promote(tmp_path, second.version, GATE)
    assert registry.current_version(tmp_path) == first.version
    assert registry.load(tmp_path, second.version).metadata["gate"]["passed"] is False


def test_a_candidate_trained_without_german_is_refused_by_the_audit(
    tmp_path: Path, fair: TrainingRun, rows: list[dict]
) -> None:
    current = promotion.save_candidate(tmp_path, fair)
    promotion.promote(tmp_path, current.version, GATE)
    english_only = train_intent([r for r in rows if r["language"] == "en"], search=False, k=3)
    planted = promotion.save_candidate(tmp_path, english_only)
    # Tolerance 1.0 switches the comparison off: the audit alone must refuse it.
    with pytest.raises(promotion.PromotionRefused, match="audit: language=de"):
        promotion.promote(tmp_path, planted.version, GATE, tolerance=1.0)
    assert registry.current_version(tmp_path) == current.version


def test_promote_then_rollback_moves_the_pointer_back(tmp_path: Path, fair: TrainingRun) -> None:
    first = promotion.save_candidate(tmp_path, fair)
    promotion.promote(tmp_path, first.version, GATE)
    second = promotion.save_candidate(tmp_path, fair)
    promotion.promote(tmp_path, second.version, GATE, tolerance=0.05)
    assert registry.current_version(tmp_path) == second.version
    assert promotion.rollback(tmp_path) == first.version
    assert registry.current_version(tmp_path) == first.version
    assert [h["action"] for h in registry.history(tmp_path)] == ["promote", "promote", "rollback"]


def test_a_candidate_saved_by_an_older_path_is_refused_saying_why(
    tmp_path: Path, fair: TrainingRun
) -> None:
    current = promotion.save_candidate(tmp_path, fair)
    promotion.promote(tmp_path, current.version, GATE)
    older = registry.save(tmp_path, fair.model, {"metrics": {"accuracy": 0.9}})  # no held-out rows
    with pytest.raises(promotion.PromotionRefused, match="cannot compare .* no held-out test rows"):
        promotion.promote(tmp_path, older.version, GATE)
    assert registry.current_version(tmp_path) == current.version


def test_a_current_version_without_held_out_rows_is_scored_on_the_candidates_rows(
    tmp_path: Path, fair: TrainingRun
) -> None:
    older = registry.save(tmp_path, fair.model, {"metrics": {"accuracy": 0.9}})  # the old path
    assert registry.current_version(tmp_path) == older.version  # newest, no CURRENT file yet
    candidate = promotion.save_candidate(tmp_path, fair)
    result = promotion.promote(tmp_path, candidate.version, GATE)
    assert result.current is not None  # the old version was scored, on the same rows
    assert result.current["answer_score"] == pytest.approx(result.candidate["answer_score"])
    assert f"the candidate's {len(fair.test_rows)} test rows" in result.compared_on
    assert f"the current version {older.version} has no held-out rows" in result.compared_on
    assert registry.current_version(tmp_path) == candidate.version


def test_a_current_version_that_cannot_be_loaded_refuses_the_comparison(
    tmp_path: Path, fair: TrainingRun
) -> None:
    current = promotion.save_candidate(tmp_path, fair)
    promotion.promote(tmp_path, current.version, GATE)
    (current.path / registry.MODEL_FILE).write_bytes(b"not a pickle")
    candidate = promotion.save_candidate(tmp_path, fair)
    with pytest.raises(promotion.PromotionRefused, match="cannot compare .* cannot be loaded"):
        promotion.promote(tmp_path, candidate.version, GATE)


def test_a_similarity_floor_chosen_for_a_recall_target_ships_with_its_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tailorbot.models.intent as intent

    calibrate = intent.calibrate_fallback
    seen: list[object] = []

    def with_floor(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("similarity"))
        found = calibrate(*args, **kwargs)  # type: ignore[arg-type]
        return replace(found, policy=replace(found.policy, min_similarity=0.75))

    monkeypatch.setattr(intent, "calibrate_fallback", with_floor)
    data = small_dataset()
    rows = [{"text": t, "intent": y} for t, y in zip(data.texts, data.labels, strict=True)]
    run = train_intent(rows, search=False, k=2, target_oos_recall=0.9)
    assert seen and seen[0] is not None  # validation similarities went into calibration
    assert run.model.fallback.min_similarity == 0.75 and run.model._known is not None
    assert run.card["params"]["min_similarity"] == 0.75
    assert run.card["thresholds"]["min_similarity"] == 0.75
