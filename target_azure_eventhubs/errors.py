"""Errors the target reports to its user: each message is complete on its own, secret-free."""

from __future__ import annotations


class TargetError(Exception):
    """An error that ends the run with a clear one-line message and a non-zero exit."""


class ConfigurationError(TargetError):
    """The settings cannot work (missing, contradictory or unsafe)."""


class DeliveryError(TargetError):
    """Events could not be delivered to Event Hubs within the retry budget, or at all."""


class InputError(TargetError):
    """The Singer input itself is broken (malformed line, record before schema, ...)."""


class InvalidRecordFailure(TargetError):
    """A record was invalid and `on_invalid_record` is `fail`."""

    #: True when found while encoding a batch: a STATE read later may already cover the
    #: record, so no further STATE may be written.
    during_drain: bool = False


class ChangeStoreError(TargetError):
    """The change store cannot be opened, read or written; names the store, never its password."""


class SnapshotGuardError(TargetError):
    """A complete snapshot would exit more memberships than `max_exit_fraction` allows."""
