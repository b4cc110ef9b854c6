"""The MiniLM encoder built as an ONNX graph without torch, and the model that uses it."""

from __future__ import annotations

import math
import pickle

import numpy as np
import onnxruntime as ort
import pytest

from tailorbot.models.intent.encoder_graph import bert_graph, quantized_int8, random_bert_weights
from tailorbot.models.intent.encoder_hybrid import EncoderHybridIntentModel
from tailorbot.models.intent.sentence_encoder import MiniLMEmbeddings

WIDTH, HEADS, INNER = 16, 4, 32


def _layer_norm(x, w, b):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w + b


def reference_forward(w, ids, layers):
    """BERT's forward in plain numpy, written from the paper's definition."""
    n, head = ids.shape[1], WIDTH // HEADS
    x = w["embeddings.word_embeddings.weight"][ids].astype(np.float64)
    x = (
        x
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    erf = np.vectorize(math.erf)
    for i in range(layers):
        p = f"encoder.layer.{i}"

        def lin(v, name, p=p):
            return v @ w[f"{p}.{name}.weight"].T + w[f"{p}.{name}.bias"]

        def split(v):
            return v.reshape(v.shape[0], n, HEADS, head).transpose(0, 2, 1, 3)

        q, k, v = (split(lin(x, f"attention.self.{t}")) for t in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        merged = context.transpose(0, 2, 1, 3).reshape(x.shape)
        norm = f"{p}.attention.output.LayerNorm"
        x = _layer_norm(
            x + lin(merged, "attention.output.dense"), w[f"{norm}.weight"], w[f"{norm}.bias"]
        )
        inner = lin(x, "intermediate.dense")
        gelu = 0.5 * inner * (1 + erf(inner / math.sqrt(2)))
        norm = f"{p}.output.LayerNorm"
        x = _layer_norm(x + lin(gelu, "output.dense"), w[f"{norm}.weight"], w[f"{norm}.bias"])
    return x


def _feeds(ids):
    return {"input_ids": ids, "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None, :]}


@pytest.mark.parametrize("layers", [1, 2])
def test_graph_matches_a_numpy_reference(layers):
    w = random_bert_weights(vocabulary=40, width=WIDTH, intermediate=INNER, layers=2)
    ids = np.array([[1, 5, 9, 3, 11, 2], [2, 7, 7, 8, 4, 6]], dtype=np.int64)
    graph = bert_graph(w, heads=HEADS, layers=layers)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, _feeds(ids))[0]
    # the word table is stored in float16: compare against the same rounding
    w16 = {
        **w,
        "embeddings.word_embeddings.weight": w["embeddings.word_embeddings.weight"]
        .astype(np.float16)
        .astype(np.float32),
    }
    want = reference_forward(w16, ids, layers)
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_int8_graph_stays_close_to_float32():
    w = random_bert_weights(vocabulary=40, width=WIDTH, intermediate=INNER, layers=2)
    graph = bert_graph(w, heads=HEADS, layers=2)
    ids = np.array([[1, 5, 9, 3, 11, 17]], dtype=np.int64)
    outs = [
        ort.InferenceSession(g, providers=["CPUExecutionProvider"]).run(None, _feeds(ids))[0]
        for g in (graph.SerializeToString(), quantized_int8(graph))
    ]
    a, b = (o[0].mean(0) for o in outs)
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.98


def test_bad_layer_counts_are_refused():
    w = random_bert_weights(vocabulary=10, width=WIDTH, intermediate=INNER, layers=1)
    with pytest.raises(ValueError, match="layers must be in"):
        bert_graph(w, heads=HEADS, layers=2)
    with pytest.raises(ValueError, match="layers must be in"):
        MiniLMEmbeddings(layers=0)


@pytest.fixture(scope="module")
def encoder():
    return MiniLMEmbeddings(layers=2)


def test_minilm_embeddings_carry_meaning(encoder):
    v = encoder.embed(["where is my new card", "my card still has not arrived", "what a nice day"])
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_training_features_equal_serving_features(encoder):
    texts = ["hi", "I was charged twice for the same transaction at the supermarket yesterday"]
    batch = encoder.embed(texts)
    for row, text in zip(batch, texts, strict=True):
        np.testing.assert_array_equal(row, encoder.embed_one(text))
    assert encoder.embed([]).shape == (0, 384)


def test_pickled_encoder_serves_from_its_own_graph(encoder, monkeypatch):
    import tailorbot.models.intent.sentence_encoder as module

    text = "how do I top up with a bank transfer"
    want = encoder.embed_one(text)
    copy = pickle.loads(pickle.dumps(encoder))

    def no_package(layers):
        raise AssertionError("a loaded encoder must not rebuild its graph")

    monkeypatch.setattr(module, "_build", no_package)
    np.testing.assert_allclose(copy.embed_one(text), want, atol=1e-6)


def test_encoder_hybrid_separates_intents_that_share_their_words():
    texts = [
        "my top up failed", "the top up did not work", "top up was declined",
        "my top up was reverted", "the top up got reversed", "they took the top up back",
        "where is my card", "card has not arrived",
    ] * 2  # fmt: skip
    labels = (["top_up_failed"] * 3 + ["top_up_reverted"] * 3 + ["card_arrival"] * 2) * 2
    model = EncoderHybridIntentModel(encoder_layers=1).fit(texts, labels)
    assert model.params()["encoder_layers"] == 1
    assert model.predict_one("my card has not arrived yet").name == "card_arrival"
    loaded = pickle.loads(pickle.dumps(model))
    p1, p2 = model.predict_proba(["top up reverted"]), loaded.predict_proba(["top up reverted"])
    np.testing.assert_allclose(p1, p2, atol=1e-6)
