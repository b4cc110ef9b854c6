"""POST /v1/personalize answers the same on the lean ASGI path (api/fast.py) as through
FastAPI's routing: the same body shape, the same errors, the same metrics label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.conftest import error_gist, make_client, post_case
from tests.services.decisions.conftest import SEED, save_model

JSON = {"content-type": "application/json"}
CASES: list[tuple[str, Any, dict[str, str]]] = [  # (what, body, headers)
    ("ok", {"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"}, {}),
    ("missing field", {"user_id": "u1", "message": "hi"}, {}),
    ("extra field", {"user_id": "u1", "session_id": "s1", "message": "hi", "x": 1}, {}),
    ("bad id", {"user_id": "", "session_id": "s1", "message": "hi"}, {}),
    ("not json", b"{nope", {"content-type": "application/json"}),
    ("empty body", b"", {"content-type": "application/json"}),
    ("not an object", [1, 2], {}),
    ("no key", {"user_id": "u1", "session_id": "s1", "message": "hi"}, {"x-api-key": ""}),
    ("wrong key", {"user_id": "u1", "session_id": "s1", "message": "hi"}, {"x-api-key": "bad"}),
    ("too long", {"user_id": "u1", "session_id": "s1", "message": "x" * 5000}, {}),
    ("bot question", {"user_id": "u2", "session_id": "s1", "message": "it still hasn't",
                      "last_bot_message": "Has your new card arrived yet?"}, {}),
    ("bot not a string", {"user_id": "u2", "session_id": "s1", "message": "no",
                          "last_bot_message": 7}, {}),
    ("bot too long", {"user_id": "u2", "session_id": "s1", "message": "no",
                      "last_bot_message": "x" * 5000}, {}),
    ("only NUL", {"user_id": "u3", "session_id": "s1", "message": "\u0000\u0000"}, {}),
    ("metadata too big", {"user_id": "u3", "session_id": "s1", "message": "hi",
                          "context": {"metadata": {"n": 2**70}}}, {}),
    ("metadata key too long", {"user_id": "u3", "session_id": "s1", "message": "hi",
                               "context": {"metadata": {"k" * 65: 1}}}, {}),
]  # fmt: skip


def shape(value: Any) -> Any:
    """The JSON's structure: keys and the types of the values (a list's items may differ
    between two trained models; tests/services checks them against the response model)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


def answers(data_dir: Path, fast: bool) -> dict[str, tuple[int, Any]]:
    save_model(data_dir)
    out = {}
    with make_client(
        data_dir, seed=SEED, run_worker_in_server=False, fast_routes=fast, api_key="k",
        max_text_chars=4000,
    ) as client:  # fmt: skip
        for what, body, headers in CASES:
            response = post_case(client, "/v1/personalize", body, headers)
            payload = response.json()
            if response.status_code == 200:  # the shape and the intent, not ids or scores
                intent = payload["intent"]
                payload = (shape(payload), intent["name"], intent["follow_up"])
            else:
                payload = error_gist(payload)
            out[what] = (response.status_code, payload)
        metrics = client.get("/metrics", headers={"x-api-key": "k"}).text
        assert 'tailorbot_request_latency_seconds_count{route="/v1/personalize"}' in metrics
    return out


def test_the_fast_path_answers_like_fastapi(tmp_path: Path) -> None:
    fast, slow = answers(tmp_path / "a", fast=True), answers(tmp_path / "b", fast=False)
    assert fast.keys() == slow.keys()
    for what in fast:
        assert fast[what] == slow[what], what
    assert fast["ok"][0] == 200
    assert [fast[w][0] for w in ("missing field", "extra field", "bad id")] == [422] * 3
    assert fast["not json"][0] == 400 and fast["not an object"][0] == 422
    assert fast["empty body"][0] == 422 and fast["empty body"][1]["problems"] == ["(body)"]
    assert fast["no key"][0] == 401 and fast["wrong key"][0] == 403
    assert fast["too long"][0] == 413
    assert fast["bot question"][0] == 200
    assert fast["bot question"][1][1:] == ("card_arrival", "continuation")
    assert fast["bot not a string"][0] == 422 and fast["bot too long"][0] == 413
    assert fast["bot too long"][1]["problems"] == ["last_bot_message"]
    # nothing but NUL would leave the logged message event empty (and refused): 422 up front
    assert fast["only NUL"][0] == 422 and fast["only NUL"][1]["problems"] == ["message"]
    assert fast["metadata too big"][0] == 422
    assert fast["metadata too big"][1]["problems"] == ["context.metadata"]
    assert fast["metadata key too long"][0] == 422


def test_before_a_model_is_trained_the_lean_routes_answer_like_fastapi(tmp_path: Path) -> None:
    """FastAPI answers a body that is not JSON first (400), then its dependency on the
    decision service (503 until a model is trained), then the body's fields: so do the lean
    routes, whatever is wrong with the body."""
    bodies = [b'{"user_id": ""}', b"", b"{nope", b'{"decision_id": "d", "rating": 5}',
              b'{"user_id": "u", "session_id": "s", "message": "hi"}']  # fmt: skip
    seen = {}
    for fast in (True, False):
        with make_client(tmp_path / str(fast), run_worker_in_server=False, fast_routes=fast) as c:
            seen[fast] = [
                (path, body, c.post(path, content=body, headers=JSON).status_code)
                for path in ("/v1/personalize", "/v1/feedback")
                for body in bodies
            ]
    assert seen[True] == seen[False]
    assert {status for _, body, status in seen[True] if body != b"{nope"} == {503}
    assert {status for _, body, status in seen[True] if body == b"{nope"} == {400}
