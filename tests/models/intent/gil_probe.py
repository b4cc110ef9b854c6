"""Whether the compiled serving path of the intent model ever releases the GIL, probed in
a process with no other Python thread (``python -m tests.models.intent.gil_probe``; used by
test_serving.py). Prints one JSON line."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable

from tailorbot.models.intent import HybridIntentModel
from tests.models.intent.support import small_dataset

PROBE_TEXTS = [
    "where is my new card? it has not arrived",
    "how do I chnage my pin numbr",
    "CARD\tcard\n\u00a0Card  card",
    "ünï cödé ﬁle ſtraße",
    "",
    "x" * 300,
]


def releases_the_gil(call: Callable[[threading.Event], object]) -> bool:
    """Whether ``call`` lets another thread run. A thread is woken just before ``call`` and
    needs the GIL to note that it ran (``call`` gets that event): it gets it at once if
    ``call`` releases it, else only when the switch interval (10 s here) forces a switch.
    No clock decides."""
    ran = threading.Event()
    go, done = threading.Event(), threading.Event()

    def note() -> None:
        go.wait()
        ran.set()  # reached only with the GIL
        done.wait()  # and gives it back at once

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=note)
    thread.start()
    sys.setswitchinterval(10.0)
    try:
        go.set()  # the thread now waits for the GIL this thread holds
        call(ran)
        released = ran.is_set()
    finally:
        done.set()
        sys.setswitchinterval(interval)
        thread.join()
    return released


def main() -> None:
    data = small_dataset()
    model = HybridIntentModel(embedding_dim=64).fit(data.texts, data.labels)
    texts = PROBE_TEXTS + list(small_dataset("test").texts[:60])
    for text in texts:  # first calls load tables and fill caches (file reads release it)
        model.predict_one(text)
    single = model._single
    found = {
        "compiled": single is not None and single.compiled,
        "predict_one_released": releases_the_gil(lambda _: [model.predict_one(t) for t in texts]),
        # the probe works: a wait releases the GIL until the thread has run. A sleep of 1 ms
        # was too short on a busy machine for the thread to be scheduled in (a CI run).
        "wait_released": releases_the_gil(lambda ran: ran.wait(60.0)),
    }
    print(json.dumps(found))


if __name__ == "__main__":
    main()
