"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tailorbot._ports import held_port


@pytest.fixture
def port() -> Iterator[int]:
    """A free port for a server the test starts, kept from every other socket of the machine
    for the whole test (``held_port``): one from ``free_port`` could be taken before the
    server bound it."""
    holder = held_port()
    try:
        yield int(holder.getsockname()[1])
    finally:
        holder.close()
