"""What the pacing tests read from the local hub's journal."""

from __future__ import annotations

from eventhubs_localhub.faults import Transfer

ACCEPTED = "accepted"


def refused(transfers: list[Transfer]) -> list[Transfer]:
    return [t for t in transfers if t.outcome != ACCEPTED]


def sustained_rate(transfers: list[Transfer], by_size: bool = False) -> float:
    """Events (or bytes) per second the hub accepted, by its own clock: what the transfers
    after the first carried, over the time from the first to the last."""
    accepted = sorted((t for t in transfers if t.outcome == ACCEPTED), key=lambda t: t.at)
    assert len(accepted) >= 2, accepted
    carried = sum(t.size if by_size else t.events for t in accepted[1:])
    return carried / (accepted[-1].at - accepted[0].at)
