"""The services: one job each, each taking only the narrow interfaces it uses.

* :mod:`~tailorbot.services.ingestion` — validate, redact, append, backpressure.
* :mod:`~tailorbot.services.users` — features, profiles, consent, erasure across every backend.
* :mod:`~tailorbot.services.decisions` — personalize, record, feedback, the A/B experiment.
* :mod:`~tailorbot.services.health` — readiness of the backends and the workers.

No service imports another's concrete class: where one needs another (a decision logs its
message event), it takes a :mod:`~tailorbot.services.ports` protocol, and
:mod:`tailorbot.runtime` wires them.
"""
