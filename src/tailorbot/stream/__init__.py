"""The stream processor: per-user feature state (``state``), the served feature view and the
bandit context (``features``), segments, and the ``StreamWorker`` loop (``worker``).

docs/features.md defines every feature exactly.
"""
