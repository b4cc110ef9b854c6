"""Feedback about an article the decision offered, after the knowledge base dropped it."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import make_client
from tests.services.decisions.conftest import SEED, save_model

MESSAGE = "where is my card, it has not arrived"


def test_a_rating_about_an_offered_article_deleted_since_is_applied(tmp_path: Path) -> None:
    save_model(tmp_path)
    with make_client(tmp_path, seed=SEED, kb_poll_s=0.1) as client:
        body = {"user_id": "u1", "session_id": "s1", "message": MESSAGE}
        answer = client.post("/v1/personalize", json=body).json()
        offered = [a["id"] for a in answer["articles"]]
        # a template may cite an article (its deletion is refused): take one no template cites
        deleted = next(
            a for a in offered if client.delete(f"/v1/kb/articles/{a}").status_code == 200
        )
        assert client.get(f"/v1/kb/articles/{deleted}").status_code == 404
        feedback = {"decision_id": answer["decision_id"], "rating": 5, "resolved": True}
        applied = client.post("/v1/feedback", json={**feedback, "helpful_article_id": deleted})
        assert applied.status_code == 200, applied.text
        assert applied.json()["applied"] is True and applied.json()["reward"] == 1.0
        # an article the decision did not offer (a later one: it is gone) is still refused
        other = client.post("/v1/personalize", json={**body, "session_id": "s2"}).json()
        assert deleted not in [a["id"] for a in other["articles"]]
        stale = {"decision_id": other["decision_id"], "rating": 4, "clicked_article_id": deleted}
        refused = client.post("/v1/feedback", json=stale)
        assert refused.status_code == 422 and "unknown article" in refused.text
