"""Fixtures for the integration tests: a real Tansu broker per test session."""

from __future__ import annotations

from tests.integration.kafka_broker import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
