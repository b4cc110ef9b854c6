"""The shared recommenders' refresh: new statistics only when the counters changed."""

from __future__ import annotations

from pathlib import Path

from tailorbot.kb import default_kb_dir, load_kb
from tailorbot.models.recommend.collaborative import NS_INTENT
from tailorbot.services.decisions.recommenders import SharedRecommenders
from tailorbot.store import open_stores


def test_refresh_rebuilds_the_statistics_only_when_the_counters_changed(tmp_path: Path) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        shared = SharedRecommenders(load_kb(default_kb_dir()), stores.counters)
        shared.refresh()
        first = shared._personalized.stats
        shared.refresh()
        assert shared._personalized.stats is first  # same counters: kept, with what it remembers

        stores.counters.increment(NS_INTENT, {"card_arrival|kb-card-delivery|shown": 1.0})
        shared.refresh()
        rebuilt = shared._personalized.stats
        assert rebuilt is not first
        assert rebuilt._raw[NS_INTENT]["card_arrival|kb-card-delivery|shown"] == 1.0
    finally:
        stores.close()
