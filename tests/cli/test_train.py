from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.models import registry
from tailorbot.models.intent import METRIC_NAMES, OUT_OF_SCOPE, IntentDataset
from tailorbot.models.pipeline import promotion
from tests.models.intent.support import small_dataset, write_csv

runner = CliRunner()


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-train")
    data = write_csv(root / "train.csv", small_dataset(), label_column="category")
    args = ["train", "--data", str(data), "--data-dir", str(root / "dd"), "--no-search"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trained intent model" in result.output and "(HybridIntentModel)" in result.output
    assert "5-fold CV on train+validation (mean ± std)" in result.output
    assert "test (" in result.output and "touched once" in result.output
    assert "saved to" in result.output and "is now current" in result.output
    return root / "dd"


@pytest.fixture(scope="module")
def test_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("cli-test") / "test.csv", small_dataset("test"))


def test_train_saves_a_current_version_with_its_card(trained_dir: Path) -> None:
    saved = registry.load_current(trained_dir)
    assert OUT_OF_SCOPE in saved.metadata["labels"]
    assert {"version", "created_at", "metrics", "thresholds", "training_data_hash", "cv",
            "test", "reference", "data", "parent", "gate"} <= set(saved.metadata)  # fmt: skip
    assert saved.metadata["model"] == "LanguageRoutedIntentModel"  # what `train` always served
    assert saved.metadata["default_model"] == "HybridIntentModel"
    assert saved.metadata["metrics"]["split"] == "test"
    assert (saved.path / registry.HELDOUT_FILE).is_file()


def test_evaluate_prints_all_metrics(trained_dir: Path, test_file: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--data", str(test_file), "--data-dir", str(trained_dir)]
    )
    assert result.exit_code == 0, result.output
    for name in METRIC_NAMES:
        assert name in result.output


def test_evaluate_json_names(trained_dir: Path, test_file: Path) -> None:
    args = ["evaluate", "--data", str(test_file), "--data-dir", str(trained_dir), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert list(metrics) == list(METRIC_NAMES)
    assert all(0.0 <= metrics[name] <= 1.0 for name in METRIC_NAMES)
    assert metrics["accuracy"] > 0.85


def test_evaluate_without_out_of_scope_rows(
    trained_dir: Path, tmp_path: Path, test_file: Path
) -> None:
    test = small_dataset("test")
    keep = [i for i, label in enumerate(test.labels) if label != OUT_OF_SCOPE]
    jsonl = tmp_path / "in_scope.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"text": test.texts[i], "intent": test.labels[i]}) + "\n" for i in keep)
    )
    human = runner.invoke(app, ["evaluate", "--data", str(jsonl), "--data-dir", str(trained_dir)])
    assert human.exit_code == 0, human.output
    assert "accuracy" in human.output
    assert "oos_recall" not in human.output
    args = ["evaluate", "--data", str(jsonl), "--data-dir", str(trained_dir), "--json"]
    metrics = json.loads(runner.invoke(app, args).stdout)
    assert metrics["oos_recall"] is None and metrics["in_scope_accuracy"] is None


def test_evaluate_notes_unknown_intents(trained_dir: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "odd.csv", IntentDataset(("where is my card",), ("brand_new",)))
    args = ["evaluate", "--data", str(path), "--data-dir", str(trained_dir), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "1 of 1 rows have intents the model does not know" in result.stderr
    assert json.loads(result.stdout)["accuracy"] == 0.0


def test_evaluate_without_a_model(tmp_path: Path, test_file: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--data", str(test_file), "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no intent model" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("rows.xlsx", "text,intent\nx,y\n", "unknown format"),
        ("rows.csv", "", "empty file"),
        ("rows.csv", "sentence,label\nhello,greet\n", "missing columns"),
        ("rows.csv", "text,intent\n", "no rows"),
    ],
)
def test_bad_files_are_clear_errors(
    trained_dir: Path, tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    for command in ("train", "evaluate"):
        args = [command, "--data", str(path), "--data-dir", str(trained_dir)]
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (command, result.output)
        assert message in result.stderr
        assert "Traceback" not in result.output


def test_train_rejects_data_too_small_to_validate(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tiny.csv", IntentDataset(("a b", "c d"), ("x", "y")))
    result = runner.invoke(app, ["train", "--data", str(path), "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no row left for validation or test" in result.stderr


def test_train_with_a_search_reports_it(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "train.csv", small_dataset(per_intent=20))
    args = ["train", "--data", str(data), "--data-dir", str(tmp_path / "dd"), "--model",
            "tfidf", "--trials", "2", "--folds", "3", "--no-promote", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["default_model"] == "TfidfIntentModel" and card["promotion"] is None
    assert card["search"]["trials"] == 2 and card["cv"]["k"] == 3
    assert {"class_weight", "C", "threshold"} <= set(card["params"])
    assert registry.current_version(tmp_path / "dd") is None  # a candidate, not promoted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "bert"], "--model: unknown intent model 'bert'"),
        (["--language-data", "german"], "--language-data: expected LANG=FILE"),
        (["--language-data", "en=x.csv"], "--language-data: 'en' given twice"),
    ],
)
def test_train_rejects_bad_model_and_language_options(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 1 and message in result.stderr
    assert "Traceback" not in result.output


def test_train_with_a_second_language_and_a_recall_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    english = write_csv(tmp_path / "en.csv", small_dataset())
    german_rows = IntentDataset(
        (
            "Meine Karte ist noch nicht angekommen",
            "Wann kommt meine neue Karte an?",
            "Ich warte immer noch auf meine Karte",
            "Die Karte wurde nicht geliefert",
            "Wo bleibt meine Bankkarte?",
            "Seit zwei Wochen keine Karte bekommen",
            "Ich habe meine Karte verloren",
            "Meine Karte wurde gestohlen",
            "Karte weg, bitte sperren",
            "Jemand hat meine Karte gestohlen",
            "Ich finde meine Karte nicht mehr",
            "Portemonnaie mit Karte verloren",
        ),
        ("card_arrival",) * 6 + ("lost_or_stolen_card",) * 6,
    )
    german = write_csv(tmp_path / "de.csv", german_rows)
    monkeypatch.setenv("TAILORBOT_FALLBACK_TARGET_RECALL", "0.9")
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(english),
            "--model",
            "tfidf",
            "--language-data",
            f"de={german}",
            "--no-search",
            "--folds",
            "3",
            "--data-dir",
            str(tmp_path / "dd"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "[de] 12 rows from" in result.output and "every language, routed" in result.output
    assert "at oos_recall >= 0.9" in result.output
    saved = registry.load_current(tmp_path / "dd")
    assert set(saved.metadata["languages"]) == {"en", "de"}
    assert saved.metadata["default_model"] == "TfidfIntentModel"
    german = saved.metadata["languages"]["de"]
    assert german["data"]["splits"]["test"] == 2 and german["test"]["n"] == 2  # its own test
    heldout = promotion.heldout_rows(tmp_path / "dd", saved.version)
    assert {r["language"] for r in heldout} == {"en", "de"}
    answer = saved.model.predict_one("Meine neue Karte ist bis heute nicht angekommen")
    assert (answer.language, answer.name) == ("de", "card_arrival")


def test_train_the_encoder_model_and_serve_it_from_the_registry(tmp_path: Path) -> None:
    # Each row costs a MiniLM pass (~3 ms) in every fit and evaluation that sees it (3 CV
    # folds, the refit, the test): 136 rows (12 per intent, 40 of the 745 out-of-scope rows
    # spread over their topics) instead of 905 are plenty for this test of the plumbing (it
    # checks no accuracy). What is left is mostly building the int8 graph, once.
    dataset = small_dataset(per_intent=12, out_of_scope=40)
    data = write_csv(tmp_path / "train.csv", dataset)
    args = ["train", "--data", str(data), "--data-dir", str(tmp_path / "dd"), "--model",
            "hybrid+minilm", "--no-search", "--folds", "3", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["default_model"] == "EncoderHybridIntentModel"
    assert card["params"]["model"] == "hybrid+minilm"
    saved = registry.load_current(tmp_path / "dd")
    prediction = saved.model.predict_one("my card has still not arrived")
    assert prediction.name in set(dataset.labels)
