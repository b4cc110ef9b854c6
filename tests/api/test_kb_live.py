"""The live KB over HTTP, as a reviewer drove it: a change applies at once in the process that
made it (the event door included, with or without polling), a change that would break the
fixed control variant is a 422, and the files of ``kb_dir`` never break a running server."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.api.conftest import make_client
from tests.api.support import event
from tests.services.decisions.conftest import SEED, save_model

ARTICLE = {"title": "Lockers", "body": "Pick your card up.", "intents": ["card_arrival"]}
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telecom" / "kb"


def _personalize(client, message: str = "where is my card, it has not arrived") -> dict:
    body = {"user_id": "u1", "session_id": "s1", "message": message}
    answer = client.post("/v1/personalize", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_events_about_a_new_article_are_accepted_right_after_the_put(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False, kb_poll_s=60.0) as client:
        viewed = event("article_viewed", article_id="kb-lockers")
        assert client.post("/v1/events", json=viewed).status_code == 422  # primes the cache
        assert client.put("/v1/kb/articles/kb-lockers", json=ARTICLE).status_code == 200
        accepted = client.post("/v1/events", json=viewed)
        assert accepted.status_code == 202, accepted.text


def test_without_polling_the_process_serves_its_own_change(tmp_path: Path) -> None:
    save_model(tmp_path)
    options = {"seed": SEED, "bandit_sync_s": 0.0, "kb_poll_s": 0.0}
    with make_client(tmp_path, run_worker_in_server=False, **options) as client:
        _personalize(client)  # the decision service is loaded
        put = client.put("/v1/kb/articles/kb-lockers", json=ARTICLE)
        assert put.status_code == 200, put.text
        answer = _personalize(client)
        assert answer["model_versions"]["kb"] == f"live-v{put.json()['version']}"


def test_dropping_the_fixed_control_variant_is_a_422(tmp_path: Path) -> None:
    save_model(tmp_path)
    options = {"seed": SEED, "kb_dir": EXAMPLE, "control_variant": "brief"}
    with make_client(tmp_path, run_worker_in_server=False, **options) as client:
        version = client.get("/v1/kb").json()["version"]
        for template_id in client.get("/v1/kb").json()["templates"]:
            body = client.get(f"/v1/kb/templates/{template_id}").json()
            body["variants"].pop("brief", None)
            answer = client.put(f"/v1/kb/templates/{template_id}", json=body)
            if answer.status_code == 422:
                break
            assert answer.status_code == 200, answer.text
        assert answer.status_code == 422, "the last template with 'brief' kept it"
        (problem,) = answer.json()["problems"]
        assert problem["field"] == "control_variant" and "'brief'" in problem["reason"]
        assert client.get("/v1/kb").json()["version"] > version  # the others were fine
        assert client.get("/readyz").status_code == 200
        assert _personalize(client, "tell me a joke")["model_versions"]["kb"].startswith("live-v")


def test_an_invalid_file_added_to_kb_dir_does_not_break_a_running_server(
    tmp_path: Path,
) -> None:
    kb_dir = tmp_path / "kb"
    shutil.copytree(EXAMPLE, kb_dir)
    with make_client(tmp_path / "data", run_worker_in_server=False, kb_dir=kb_dir) as client:
        version = client.get("/v1/kb").json()["version"]
        (kb_dir / "broken.yaml").write_text("articles:\n  - {id: x}\n")
        assert client.get("/v1/kb").status_code == 200
        article = {**ARTICLE, "intents": ["sim_activation"]}
        put = client.put("/v1/kb/articles/tt-esim", json=article)
        assert put.status_code == 200 and put.json()["version"] == version + 1
        viewed = event("article_viewed", article_id="tt-esim")
        assert client.post("/v1/events", json=viewed).status_code == 202
