"""Which delivery a run uses: the sender process, the in-process sender, or none (dry run)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from target_azure_eventhubs.delivery import launcher
from target_azure_eventhubs.delivery.connection import ConnectionSpec
from target_azure_eventhubs.delivery.dry_run import DryRunDelivery
from target_azure_eventhubs.delivery.policy import DeliveryOptions
from target_azure_eventhubs.delivery.process import DeliveryProcess
from target_azure_eventhubs.delivery.sender import Delivery

AnyDelivery = Delivery | DeliveryProcess | DryRunDelivery


def make_delivery(  # noqa: PLR0917  (what delivery needs, then how the run goes)
    config: Mapping[str, Any],
    spec: ConnectionSpec,
    options: DeliveryOptions,
    on_released: Callable[[int], None],
    logger: logging.Logger,
    should_stop: Callable[[], bool],
    *,
    dry_run: bool,
    sender_process: bool,
) -> AnyDelivery:
    if dry_run:
        launcher.discard()  # nothing will be sent
        return DryRunDelivery(options, on_released)
    if sender_process and os.name != "posix":  # the child gets its socket via pass_fds
        logger.info("sender_process needs a POSIX system: sending from this process")
        sender_process = False
    if not sender_process:
        return Delivery(spec, options, on_released, logger, should_stop)
    delivery = DeliveryProcess(config, options, on_released, logger, should_stop)
    # The command connects while the first lines are read; a target built in a program
    # of its own starts its sender process when it first opens a hub.
    if spec.default_eventhub and launcher.prestarted():
        delivery.connect_early(spec.default_eventhub)
    return delivery
