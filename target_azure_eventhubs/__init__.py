"""Singer target that streams customer-profile segment-membership events into Azure Event Hubs."""

from __future__ import annotations

DISTRIBUTION = "target-azure-eventhubs"


def __getattr__(name: str) -> str:
    # `__version__` is read from the installed distribution's metadata, which is built from
    # pyproject.toml: the same source singer-sdk's `--version` and `--about` read. Looked up
    # on first use only, so that the command's start does not pay for it.
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415

        return version(DISTRIBUTION)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
