from __future__ import annotations

from pathlib import Path

from tailorbot.config import Settings
from tailorbot.events.codec import encode_event
from tailorbot.events.schema import EVENT_ADAPTER
from tailorbot.models import registry
from tailorbot.runtime import Runtime
from tailorbot.stream.retrainer import RetrainWorker
from tailorbot.stream.thread import WorkerThread
from tests.helpers import wait_until
from tests.models.pipeline.support import support_log


def test_the_watch_loop_retrains_once_enough_labels_arrived(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False, retrain_min_labels=100)
    runtime = Runtime(settings)
    outcomes: list = []
    try:
        events, profiles = support_log(users=30, contacts=4, label_share=0.5, seed=2)
        runtime.log.append(
            [(e["user_id"], encode_event(EVENT_ADAPTER.validate_python(e))) for e in events]
        )
        worker = RetrainWorker(
            runtime.log, runtime.stores.profiles, runtime.stores.features, settings,
            runtime.metrics, check_s=0.2,
            train_options={"search": False, "k": 3}, on_outcome=outcomes.append,
        )  # fmt: skip
        thread = WorkerThread(worker, "test-retrainer")
        thread.start()
        wait_until(lambda: len(outcomes) >= 1, "the first check", 30)
        assert outcomes[0].outcome == "skipped"  # about 60 labels, 100 needed
        more, _ = support_log(users=30, contacts=4, label_share=1.0, seed=3)
        labels = [e for e in more if e["type"] == "intent_label"]
        runtime.log.append(
            [(e["user_id"], encode_event(EVENT_ADAPTER.validate_python(e))) for e in more]
        )
        wait_until(lambda: outcomes[-1].outcome != "skipped", "a retraining", 60)
        thread.stop()
    finally:
        runtime.stop()
    assert labels and outcomes[-1].outcome == "promoted", outcomes[-1]
    assert registry.current_version(tmp_path) == outcomes[-1].version
    text = runtime.metrics.render().decode()
    assert (
        f'tailorbot_retrain_last_info{{outcome="promoted",version="{outcomes[-1].version}"}} 1.0'
        in text
    )
