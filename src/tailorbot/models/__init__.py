"""Learned parts of the engine: intent (with fallback), recommend, bandit, and the registry
that stores versioned models under ``DATA_DIR/models/<kind>/<version>/``."""
