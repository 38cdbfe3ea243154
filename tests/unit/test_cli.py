"""The command line reads the --config files early only to start connecting sooner."""

from __future__ import annotations

import json
from pathlib import Path

from target_azure_eventhubs.cli import early_config


def write(tmp_path: Path, name: str, config: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_config_files_merge_in_order(tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", {"connection_string": "Endpoint=sb://a/", "eventhub_name": "x"})
    b = write(tmp_path, "b.json", {"eventhub_name": "y"})
    assert early_config(["--config", a, f"--config={b}"]) == {
        "connection_string": "Endpoint=sb://a/",
        "eventhub_name": "y",
    }


def test_nothing_early_when_it_cannot_be_trusted(tmp_path: Path) -> None:
    keyed = {"namespace": "n", "sas_key_name": "k", "sas_key": "s", "eventhub_name": "h"}
    good = write(tmp_path, "good.json", keyed)
    assert early_config(["--config", good]) == keyed
    assert early_config([]) is None
    assert early_config(["--config"]) is None
    assert early_config(["--config", "ENV"]) is None  # settings from the environment
    assert early_config(["--config", str(tmp_path / "missing.json")]) is None
    assert early_config(["--config", write(tmp_path, "list.json", [1])]) is None  # type: ignore[arg-type]
    assert (
        early_config(["--config", write(tmp_path, "bad.json", {})]) is None
    )  # no key: nothing to do
    entra = write(tmp_path, "entra.json", {**keyed, "use_entra_id": True})
    assert early_config(["--config", entra]) is None  # a credential object: not early
    one_process = write(tmp_path, "one.json", {**keyed, "sender_process": False})
    assert early_config(["--config", one_process]) is None
