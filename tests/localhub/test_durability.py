"""A subprocess hub with --data-dir keeps every accepted event across SIGKILL + restart."""

from __future__ import annotations

from pathlib import Path

from azure.eventhub import EventData, EventHubProducerClient
from eventhubs_localhub import LocalHubProcess

from target_azure_eventhubs.testing import read_all


def test_sigkill_and_restart_keep_accepted_events(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with LocalHubProcess(hubs={"profiles": 2}, data_dir=data_dir) as proc:
        conn = proc.connection_string("profiles")
        with EventHubProducerClient.from_connection_string(conn, retry_total=0) as producer:
            for n in range(3):
                batch = producer.create_batch(partition_key=f"key-{n}")
                for i in range(50):
                    event = EventData(b"event-%d-%d" % (n, i))
                    event.properties = {"n": n, "i": i}
                    batch.add(event)
                producer.send_batch(batch)
            producer.send_batch([EventData(b"to-1")], partition_id="1")
        before = read_all(conn, timeout=20)
        assert proc.control("count profiles") == "OK 151"
        port = proc.port

        proc.kill()
        # A write torn by the crash: garbage appended to a log must be cut off on reload.
        with open(data_dir / "profiles" / "1.log", "ab") as log:
            log.write(b"\x00\x00\x01\x00torn")
        proc.restart()
        assert proc.port == port

        after = read_all(conn, timeout=20)
        assert len(after) == 151
        key = [
            (e.partition_id, e.sequence_number, e.offset, e.body, e.partition_key) for e in before
        ]
        assert [
            (e.partition_id, e.sequence_number, e.offset, e.body, e.partition_key) for e in after
        ] == key
        assert {e.body for e in after} >= {b"event-2-49", b"to-1"}
        assert after[0].properties.keys() == {"n", "i"}

        # The restarted hub continues the sequence where it stopped.
        with EventHubProducerClient.from_connection_string(conn, retry_total=0) as producer:
            producer.send_batch([EventData(b"after-restart")], partition_id="1")
        on_partition_1 = len([e for e in after if e.partition_id == "1"])
        assert proc.control("count profiles 1") == f"OK {on_partition_1 + 1}"
        assert proc.terminate() == 0
