"""The parent's listener: releases already waiting behind one are released at once (one
change-store commit and one STATE for them all), in order with the other messages."""

from __future__ import annotations

import queue
from multiprocessing import Pipe

from target_azure_eventhubs.delivery.process import DeliveryProcess


def listener(conn: object, released: list[int]) -> DeliveryProcess:
    process = DeliveryProcess.__new__(DeliveryProcess)  # only what `_listen` uses
    process._conn = conn  # type: ignore[assignment]
    process._on_released = released.append
    process._replies = queue.Queue()
    process._failure = None
    process._disconnected = False
    return process


def test_waiting_releases_are_released_through_the_last() -> None:
    parent, child = Pipe()
    released: list[int] = []
    process = listener(parent, released)
    for mark in (1, 2, 3):
        child.send(("released", mark))
    child.send(("progress", "stats"))
    child.send(("released", 4))
    child.send(("reply", True, "flushed"))  # a reply after a release sees it done
    child.close()
    process._listen()
    assert released == [3, 4]
    assert process._progress == "stats"
    assert process._replies.get_nowait() == (True, "flushed")
    assert process._disconnected


def test_a_release_before_the_connection_ends_is_still_released() -> None:
    parent, child = Pipe()
    released: list[int] = []
    process = listener(parent, released)
    child.send(("released", 1))
    child.send(("released", 2))
    child.close()
    process._listen()
    assert released == [2]
    assert process._disconnected
