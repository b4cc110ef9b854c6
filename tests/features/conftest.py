"""The decision-service fixtures, for the tests that check features reach a decision."""

from tests.services.decisions.conftest import data_dir, make_service

__all__ = ["data_dir", "make_service"]
