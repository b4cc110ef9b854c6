"""LinUCB's compiled choice (``ucb_select`` in csrc/ucb.c) against its Python path: the same
arm, propensity, scores and draws, the same errors, and the Python path wherever the
compiled call declines."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from tailorbot.compiled import native
from tailorbot.models.bandit import LinUCB
from tailorbot.models.bandit.base import Choice, ContextualBandit
from tailorbot.models.bandit.linucb import TIE_TOLERANCE

loops = native()
pytestmark = pytest.mark.skipif(
    loops is None and os.environ.get("CI") != "true",
    reason="the extension is not built here (required under CI=true)",
)
NAMES = [f"f{i}" for i in range(5)]


def _learned(seed: int, alpha: float = 1.0, epsilon: float = 0.05) -> LinUCB:
    rng = np.random.default_rng(seed)
    bandit = LinUCB(NAMES, alpha=alpha, epsilon=epsilon)
    for _ in range(int(rng.integers(0, 30))):
        context = {name: float(rng.normal()) for name in NAMES}
        bandit.learn_one(context, str(rng.choice(["a", "b", "c"])), float(rng.random()))
    return bandit


def _python_select(bandit: LinUCB, context: dict, arms: list, seed: int, features=None):
    rng = np.random.default_rng(seed)
    return ContextualBandit.select(bandit, context, arms, rng, features), rng.random()


def _compiled(bandit: LinUCB, context: dict, arms: list, draw, features=None):
    assert loops is not None
    return loops.ucb_select(
        context, bandit._index, arms, features, bandit._posterior, bandit.alpha,
        bandit.epsilon, TIE_TOLERANCE, draw,
    )  # fmt: skip


def test_the_compiled_choice_is_the_python_path() -> None:
    """Arm, propensity, scores and the generator's state after it, over learned and fresh
    arms (fresh ones tie), epsilon from 0 to 1, alpha 0 (more ties) and an int alpha, ints,
    bools and unknown names in the context, action features for some arms."""
    rng = np.random.default_rng(3)
    compiled_choices = 0
    for trial in range(400):
        alpha = (0.0, 1, 0.5, 2.0)[trial % 4]
        epsilon = (0.0, 0.05, 1.0, 0.3)[trial % 4 if trial % 7 else 0]
        bandit = _learned(trial, alpha, epsilon)
        arms = ["a", "b", "c", "never-played"][: 1 + trial % 4]
        context: dict[str, object] = {
            str(name): float(rng.normal())
            for name in rng.choice(NAMES, size=trial % 6, replace=False)
        }
        context["not a feature"] = "ignored"
        if trial % 3 == 0:
            context["f0"] = int(rng.integers(-2, 3))
        if trial % 5 == 0:
            context["f1"] = True
        features = {arm: {"f4": float(rng.random()), "f2": 1} for arm in arms[: trial % 3]}
        for arm in arms:
            bandit._solve(arm)
        seed = int(rng.integers(1 << 30))
        want, after = _python_select(bandit, context, arms, seed, features)
        generator = np.random.default_rng(seed)
        got = bandit.select(context, arms, generator, features)
        assert got == want
        assert generator.random() == after  # one uniform drawn, as the Python path draws
        picked = _compiled(bandit, context, arms, np.random.default_rng(seed).random, features)
        assert picked is not None and Choice(*picked) == want
        compiled_choices += 1
    assert compiled_choices == 400


def test_an_arm_not_solved_yet_goes_the_python_way_once() -> None:
    bandit = _learned(1)
    arms = ["a", "b", "fresh"]
    bandit._posterior.clear()
    assert _compiled(bandit, {"f0": 0.5}, arms, np.random.default_rng(0).random) is None
    first = bandit.select({"f0": 0.5}, arms, np.random.default_rng(0))
    assert set(bandit._posterior) == set(arms)  # solved by the Python path, kept
    assert _compiled(bandit, {"f0": 0.5}, arms, np.random.default_rng(0).random) is not None
    assert bandit.select({"f0": 0.5}, arms, np.random.default_rng(0)) == first


class Name(str):
    pass


@pytest.mark.parametrize(
    "arms",
    [[], ["a", "a"], ["a", "b/c"], ["a", ""], ["a", Name("b")], ["a", 1]],
    ids=["none", "twice", "slash", "empty", "str-subclass", "not-str"],
)
def test_arms_check_arms_would_refuse_are_left_to_it(arms: list) -> None:
    bandit = _learned(2)
    for arm in ("a", "b", "b/c", ""):
        bandit._posterior[arm] = bandit._solve("a")
    assert _compiled(bandit, {}, arms, np.random.default_rng(0).random) is None
    if arms == ["a", Name("b")]:  # a valid arm, answered by the Python path
        want, _ = _python_select(bandit, {}, arms, 5)
        assert bandit.select({}, arms, np.random.default_rng(5)) == want
        return
    with pytest.raises((ValueError, TypeError)) as raised:
        bandit.select({}, arms)
    with pytest.raises(type(raised.value), match=str(raised.value)):
        ContextualBandit.select(bandit, {}, arms)


@pytest.mark.parametrize(
    ("alpha", "epsilon"),
    [(np.float64(1.0), 0.1), (1.0, True), (2**60, 0.1), (1.0, np.float32(0.1))],
)
def test_parameters_whose_arithmetic_may_differ_are_left_to_python(alpha, epsilon) -> None:
    bandit = _learned(4)
    bandit.alpha, bandit.epsilon = alpha, epsilon
    arms = ["a", "b"]
    for arm in arms:
        bandit._solve(arm)
    assert _compiled(bandit, {"f0": 1.0}, arms, np.random.default_rng(0).random) is None
    want, _ = _python_select(bandit, {"f0": 1.0}, arms, 9)
    assert bandit.select({"f0": 1.0}, arms, np.random.default_rng(9)) == want


def test_errors_are_the_python_paths_and_nothing_is_drawn() -> None:
    bandit = _learned(5)
    arms = ["a", "b"]
    for arm in arms:
        bandit._solve(arm)
    draws: list[float] = []

    def draw() -> float:
        draws.append(0.5)
        return 0.5

    for context, features in (({"f0": math.nan}, None), ({}, {"b": {"f3": -math.inf}})):
        with pytest.raises(ValueError) as compiled_error:
            _compiled(bandit, context, arms, draw, features)
        with pytest.raises(ValueError) as python_error:
            ContextualBandit.select(bandit, context, arms, None, features)
        assert str(compiled_error.value) == str(python_error.value)
    assert draws == []
    # what float() reads by running code: left to the Python path, which reads it
    assert _compiled(bandit, {"f0": np.float64(0.5)}, arms, draw) is None
    assert draws == []
    want, _ = _python_select(bandit, {"f0": 0.5}, arms, 2)
    assert bandit.select({"f0": np.float64(0.5)}, arms, np.random.default_rng(2)) == want


def test_a_nan_or_an_infinite_score_is_left_to_the_python_path() -> None:
    bandit = LinUCB(["x"], alpha=1.0)
    arms = ["a", "b"]
    for arm in arms:
        bandit._solve(arm)
    bandit._posterior["a"] = (np.eye(2), np.array([math.nan, 0.0]))
    assert _compiled(bandit, {"x": 1.0}, arms, lambda: 0.5) is None
    bandit._posterior["a"] = (np.eye(2), np.array([math.inf, 0.0]))  # floor inf - inf: NaN
    assert _compiled(bandit, {"x": 1.0}, arms, lambda: 0.5) is None
    with pytest.raises(ZeroDivisionError):  # no arm at or above a NaN floor
        bandit.select({"x": 1.0}, arms)


def test_the_arm_is_the_one_drawn_even_if_the_draw_changes_the_list() -> None:
    bandit = _learned(6, epsilon=1.0)  # uniform: a draw near 1 picks the last arm
    arms = ["a", "b", "c"]
    for arm in arms:
        bandit._solve(arm)

    def draw() -> float:
        arms.clear()
        return 0.99

    picked = _compiled(bandit, {}, arms, draw)
    assert picked is not None and picked[0] == "c" and picked[1] == pytest.approx(1 / 3)
