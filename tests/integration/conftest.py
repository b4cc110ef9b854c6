"""Fixtures for the integration tests: a real Tansu broker per test session, and an isolated
PostgreSQL schema per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.helpers import POSTGRES_URL, require_server
from tests.integration.kafka_broker import kafka_bootstrap

__all__ = ["kafka_bootstrap"]


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name (for ``?schema=``), dropped afterwards."""
    require_server("postgresql", "127.0.0.1", 5432)
    name = f"tbtest_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
