"""Link addresses and consumer selector filters, as the SDK writes them."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from urllib.parse import urlparse

from .storage import PartitionLog

# Where and how Event Hubs serves AMQP over WebSockets (the SDK's `AMQP_WS_SUBPROTOCOL`).
WS_PATH = "/$servicebus/websocket"
WS_SUBPROTOCOL = "AMQPWSB10"


@dataclass(frozen=True)
class Entity:
    """A parsed link address: ``<hub>[/ConsumerGroups/<cg>][/Partitions/<id>]``."""

    hub: str
    consumer_group: str | None = None
    partition_id: str | None = None

    @property
    def path(self) -> str:
        """The entity path tokens are matched against (lower-case)."""
        parts = [self.hub]
        if self.consumer_group is not None:
            parts += ["consumergroups", self.consumer_group]
        if self.partition_id is not None:
            parts += ["partitions", self.partition_id]
        return "/".join(parts).lower()


def parse_address(address: str) -> Entity | None:
    """Entity of ``amqps://host/hub/...`` or a bare ``hub/...`` path; None if malformed."""
    path = urlparse(address).path if "://" in address else address
    segments = [s for s in path.split("/") if s]
    if not segments:
        return None
    hub, rest = segments[0], segments[1:]
    consumer_group = None
    partition_id = None
    if len(rest) >= 2 and rest[0].lower() == "consumergroups":
        consumer_group, rest = rest[1], rest[2:]
    if len(rest) >= 2 and rest[0].lower() == "partitions":
        partition_id, rest = rest[1], rest[2:]
    if rest:
        return None
    return Entity(hub, consumer_group, partition_id)


_SELECTOR = re.compile(
    r"amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>|=)\s*'([^']*)'",
    re.IGNORECASE,
)


class SelectorError(ValueError):
    pass


def start_index(selector: str | None, log: PartitionLog) -> int:
    """Sequence number of the first event a consumer with this selector receives."""
    if not selector:
        return 0
    match = _SELECTOR.search(selector)
    if match is None:
        raise SelectorError(f"unsupported selector {selector!r}")
    name, op, raw = match.group(1).lower(), match.group(2), match.group(3)
    inclusive = op in (">=", "=")
    if name == "offset":
        if raw == "@latest":
            return len(log)
        value = int(raw)
        if value < 0:
            return 0
        find = bisect_left if inclusive else bisect_right
        return find(log.offsets, value)
    if name == "sequence-number":
        value = int(raw)
        return max(0, value if inclusive else value + 1)
    # enqueued-time, in ms since the epoch
    value = int(raw)
    find = bisect_left if inclusive else bisect_right
    return find(log.times, value)
