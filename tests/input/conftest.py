"""Fixtures of the bad-input suite."""

from tests.input.support import hub

__all__ = ["hub"]
