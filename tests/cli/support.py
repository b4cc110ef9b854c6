"""What the CLI tests share: the house rule's check of a refused command's output."""

from __future__ import annotations


def one_error_line(stderr: str, *needles: str) -> str:
    """``stderr`` is exactly one ``error:`` line holding every needle; returns it."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
