"""The contract every contextual bandit keeps, checked for each policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tailorbot.models.bandit import ContextualBandit, LinearThompson, LinUCB
from tests.helpers import per_entry

ARMS = ["concise", "step_by_step", "empathetic"]
SEGMENTS = ["seg_a", "seg_b", "seg_c"]
FEATURES = [*SEGMENTS, "noise"]
# Success probability of each arm (columns) in each segment (rows): arm k is best in segment k.
SUCCESS = np.array([[0.75, 0.35, 0.45], [0.40, 0.75, 0.35], [0.35, 0.45, 0.75]])

POLICIES = {
    "linucb": lambda seed: LinUCB(FEATURES, alpha=1.0, epsilon=0.05, seed=seed),
    "thompson": lambda seed: LinearThompson(FEATURES, v=0.5, seed=seed),
    "thompson_eps": lambda seed: LinearThompson(FEATURES, v=0.5, epsilon=0.05, seed=seed),
}


@pytest.fixture(params=sorted(POLICIES))
def make(request):
    return POLICIES[request.param]


def play(bandit: ContextualBandit, rounds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the bandit in the segment environment: per round, optimal? and expected regret."""
    rng = np.random.default_rng(seed)
    optimal = np.empty(rounds, dtype=bool)
    regret = np.empty(rounds)
    for t in range(rounds):
        segment = int(rng.integers(len(SEGMENTS)))
        # An irrelevant feature and a name the model does not know, to be ignored.
        context = {SEGMENTS[segment]: 1.0, "noise": rng.normal(), "undeclared": 5.0}
        arm = ARMS.index(bandit.select(context, ARMS).arm)
        reward = float(rng.random() < SUCCESS[segment, arm])
        bandit.learn_one(context, ARMS[arm], reward)
        optimal[t] = arm == segment
        regret[t] = SUCCESS[segment, segment] - SUCCESS[segment, arm]
    return optimal, regret


def test_converges_to_the_best_arm_per_context(make):
    rounds = 3000
    optimal, regret = play(make(seed=3), rounds, seed=3)
    uniform_regret = rounds * float((SUCCESS.diagonal()[:, None] - SUCCESS).mean())  # ~717
    assert optimal[-500:].mean() >= 0.8
    assert regret.sum() <= 0.15 * uniform_regret
    # Sublinear: the last thousand rounds cost less than the first thousand.
    assert regret[-1000:].sum() < regret[:1000].sum()


def test_propensities_sum_to_one_and_match_the_choice(make):
    bandit = make(seed=1)
    play(bandit, 200, seed=1)
    for segment in SEGMENTS:
        probs, scores = bandit.probabilities({segment: 1.0}, ARMS)
        assert list(probs) == ARMS and list(scores) == ARMS
        assert math.isclose(sum(probs.values()), 1.0)
        assert all(0.0 <= p <= 1.0 for p in probs.values())
        choice = bandit.select({segment: 1.0}, ARMS)
        assert 0.0 < choice.propensity <= 1.0
        assert choice.arm in ARMS


def test_epsilon_floor_keeps_every_arm_possible():
    for bandit in (POLICIES["linucb"](0), POLICIES["thompson_eps"](0)):
        play(bandit, 300, seed=0)
        for segment in SEGMENTS:
            probs, _ = bandit.probabilities({segment: 1.0}, ARMS)
            assert min(probs.values()) >= bandit.epsilon / len(ARMS) - 1e-12


def same_statistics(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def learn_through_deltas(make, rounds: int) -> tuple[ContextualBandit, list[dict]]:
    """A model that learns ``rounds`` updates, and the deltas of two servers that saw
    them (each one of two)."""
    rng = np.random.default_rng(5)
    sequential, server_a, server_b = (make(seed=0) for _ in range(3))
    deltas = []
    for t in range(rounds):
        context = {SEGMENTS[t % 3]: 1.0, "noise": float(rng.normal())}
        arm = ARMS[int(rng.integers(3))]
        reward = float(rng.random())
        sequential.learn_one(context, arm, reward)
        deltas.append((server_a if t % 2 else server_b).statistics_delta(context, arm, reward))
    return sequential, deltas


def summed(deltas: list[dict]) -> dict[str, np.ndarray]:
    sums: dict[str, np.ndarray] = {}
    for delta in deltas:
        for key, vector in delta.items():
            sums[key] = sums[key] + vector if key in sums else vector.copy()
    return sums


def assert_same_model(reader: ContextualBandit, sequential: ContextualBandit) -> None:
    assert sorted(reader.arms) == sorted(sequential.arms)
    for arm in ARMS:
        assert reader.n_updates(arm) == sequential.n_updates(arm)
        np.testing.assert_allclose(reader._gram[arm], sequential._gram[arm], atol=1e-9)
        np.testing.assert_allclose(reader._xr[arm], sequential._xr[arm], atol=1e-9)
        coef_r, coef_s = reader.coefficients(arm), sequential.coefficients(arm)
        assert coef_r == pytest.approx(coef_s, abs=1e-9)


def test_summed_deltas_rebuild_the_sequential_model(make):
    """Two servers add their deltas to shared vectors; a third loads the sums."""
    sequential, deltas = learn_through_deltas(make, 400)
    vectors = summed(deltas)
    reader = make(seed=0)
    reader.load_statistics(vectors)
    assert_same_model(reader, sequential)
    # The whole state exported is what the deltas summed to.
    exported = sequential.statistics()
    assert exported.keys() == vectors.keys()
    for key, vector in vectors.items():
        np.testing.assert_allclose(exported[key], vector, atol=1e-9)


def test_per_entry_statistics_of_an_older_store_add_to_the_packed_ones(make):
    """A store written before the packed layout holds one counter an entry; what was
    learned since is packed: the model loads the sum of both."""
    sequential, deltas = learn_through_deltas(make, 400)
    dim = len(FEATURES) + 1
    older = per_entry(summed(deltas[:250]), dim)
    reader = make(seed=0)
    reader.load_statistics(summed(deltas[250:]), older)
    assert_same_model(reader, sequential)
    alone = make(seed=0)
    alone.load_statistics({}, per_entry(sequential.statistics(), dim))
    assert_same_model(alone, sequential)


def test_delta_is_the_packed_outer_product_bit_for_bit(make):
    """statistics_delta is the count, reward * x and the upper triangle of numpy's outer
    product, row by row, bit for bit (zeros, negative zeros, tiny products that underflow
    and a zero reward included)."""
    bandit = make(seed=0)
    rng = np.random.default_rng(3)
    contexts = [
        {"seg_a": 1.0, "noise": -0.0},
        {"seg_b": 1e-200, "noise": 1e-200},  # the product underflows to zero
        {name: float(rng.normal()) for name in FEATURES},
        {"seg_c": 0.0, "unknown": 5.0},
        {},
    ]
    rows, cols = np.triu_indices(len(FEATURES) + 1)
    for context in contexts:
        for reward in (0.0, -0.0, 0.7, 1.0):
            x = bandit.vector(context)
            whole = np.concatenate(([1.0], reward * x, np.outer(x, x)[rows, cols]))
            (key, delta), *others = bandit.statistics_delta(context, "concise", reward).items()
            assert key == "arm/concise" and not others
            assert delta.tobytes() == whole.tobytes()


def test_delta_does_not_change_the_model(make):
    bandit = make(seed=0)
    bandit.statistics_delta({"seg_a": 1.0}, "concise", 1.0)
    assert bandit.arms == []


def test_load_replaces_state_and_ignores_other_keys(make):
    bandit = make(seed=0)
    bandit.learn_one({"seg_a": 1.0}, "concise", 1.0)
    packed = make(seed=0).statistics_delta({"seg_b": 1.0}, "step_by_step", 1.0)
    older = {"meta/version": 3.0, "arm/empathetic/b/4": 2.0, "arm/empathetic/n": 2}
    bandit.load_statistics({**packed, "meta/packed": [1.0]}, older)
    assert sorted(bandit.arms) == ["empathetic", "step_by_step"]
    assert bandit.n_updates("concise") == 0 and bandit.n_updates("empathetic") == 2
    assert bandit.n_updates("step_by_step") == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("arm/concise/A/0", "malformed"),
        ("arm/concise/b/x", "malformed"),
        ("arm//n", "does not fit"),
        ("arm/concise/A/0/9", "does not fit"),
        ("arm/concise/b/-1", "does not fit"),
    ],
)
def test_load_rejects_bad_keys_and_keeps_the_state(key, message):
    bandit = LinUCB(FEATURES)
    bandit.learn_one({"seg_a": 1.0}, "concise", 1.0)
    before = bandit.statistics()
    with pytest.raises(ValueError, match=message):
        bandit.load_statistics({}, {"arm/empathetic/n": 4.0, key: 1.0})
    assert same_statistics(bandit.statistics(), before)


@pytest.mark.parametrize(
    ("key", "values", "message"),
    [
        ("arm/", [0.0] * 21, "malformed"),
        ("arm/concise/n", [0.0] * 21, "malformed"),
        ("arm/concise", [0.0] * 20, "20 values, not the 21 of a model with 4 features"),
        ("arm/concise", [[0.0] * 21], "not the 21"),
        ("arm/concise", [float("nan")] + [0.0] * 20, "not all finite"),
    ],
)
def test_load_rejects_bad_packed_statistics_and_keeps_the_state(key, values, message):
    bandit = LinUCB(FEATURES)
    bandit.learn_one({"seg_a": 1.0}, "concise", 1.0)
    before = bandit.statistics()
    with pytest.raises(ValueError, match=message):
        bandit.load_statistics({"arm/empathetic": [0.0] * 21, key: values})
    assert same_statistics(bandit.statistics(), before)


def test_load_rejects_non_finite_values():
    with pytest.raises(ValueError, match="not finite"):
        LinUCB(FEATURES).load_statistics({}, {"arm/concise/b/0": float("nan")})


def test_same_seed_same_choices_other_seed_other_choices(make):
    first, second = make(seed=9), make(seed=9)
    assert np.array_equal(play(first, 300, seed=2)[0], play(second, 300, seed=2)[0])
    assert same_statistics(first.statistics(), second.statistics())
    other = make(seed=10)
    # Same environment draws, different policy randomness: the choices differ somewhere.
    assert not np.array_equal(play(make(seed=9), 300, seed=2)[1], play(other, 300, seed=2)[1])


def test_explicit_rng_overrides_the_model_generator(make):
    bandit = make(seed=0)
    play(bandit, 100, seed=0)
    picks = [bandit.select({"seg_b": 1.0}, ARMS, rng=np.random.default_rng(4)) for _ in range(3)]
    assert picks[0] == picks[1] == picks[2]


def test_context_mapping_onto_declared_features():
    bandit = LinUCB(["a", "b"])
    np.testing.assert_array_equal(bandit.vector({"b": 2, "zzz": 7.0}), [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="'a' is not a finite number"):
        bandit.vector({"a": float("nan")})
    with pytest.raises(ValueError):
        bandit.vector({"a": "high"})


def test_feature_signature_follows_the_feature_list():
    assert LinUCB(["a", "b"]).feature_signature() == LinearThompson(["a", "b"]).feature_signature()
    assert LinUCB(["a", "b"]).feature_signature() != LinUCB(["b", "a"]).feature_signature()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": ["a", "a"]}, "duplicate"),
        ({"features": "ab"}, "sequence of names"),
        ({"features": ["a"], "ridge": 0.0}, "ridge"),
        ({"features": ["a"], "epsilon": 1.5}, "epsilon"),
        ({"features": ["a"], "alpha": -1.0}, "alpha"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        LinUCB(**kwargs)


@pytest.mark.parametrize(
    ("arms", "message"),
    [([], "at least one"), (["x", "x"], "unique"), (["a/b"], "without '/'"), ("ab", "sequence")],
)
def test_bad_arms_are_rejected(arms, message):
    with pytest.raises((ValueError, TypeError), match=message):
        LinUCB(["a"]).select({}, arms)


def test_bad_rewards_and_arm_names_are_rejected():
    bandit = LinUCB(["a"])
    with pytest.raises(ValueError, match="finite"):
        bandit.learn_one({}, "x", float("inf"))
    with pytest.raises(ValueError, match="arm names"):
        bandit.statistics_delta({}, "", 1.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LinUCB(["own"], alpha=0.1, epsilon=0.1, seed=1),
        lambda: LinearThompson(["own"], v=0.1, epsilon=0.1, seed=1),
    ],
)
def test_action_features_let_one_model_per_arm_follow_each_customers_own_memory(make) -> None:
    """Every arm learns that the customer's own past reward with it predicts the next one;
    the choice then follows each customer's memory, not one global favourite."""
    bandit = make()
    rng = np.random.default_rng(0)
    for _ in range(400):
        own = {"a": float(rng.random()), "b": float(rng.random())}
        for arm in ("a", "b"):
            bandit.learn_one({"own": own[arm]}, arm, own[arm])
    likes_a = {"a": {"own": 0.9}, "b": {"own": 0.1}}
    likes_b = {"a": {"own": 0.1}, "b": {"own": 0.9}}
    assert bandit.select({}, ["a", "b"], arm_features=likes_a).arm == "a"
    assert bandit.select({}, ["a", "b"], arm_features=likes_b).arm == "b"
    probs, _ = bandit.probabilities({}, ["a", "b"], arm_features=likes_b)
    assert probs["a"] >= 0.05 - 1e-9  # the epsilon floor holds with action features too
