"""Per-user features: the state the stream worker keeps, the view it serves, the bandit context.

Shared by the stream worker (which applies events to :mod:`~tailorbot.features.state`) and the
decision path (which reads :func:`~tailorbot.features.view.feature_view` and builds the bandit's
:func:`~tailorbot.features.context.decision_context`), so neither reaches into the other.
"""
