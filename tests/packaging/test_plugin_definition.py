"""plugin/target-azure-eventhubs.yml, the loader's Meltano Hub definition: generated from
`--about`, in the Hub's format, with the target's real ways to connect, and declaring the
same settings as the project's own meltano.yml."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from target_azure_eventhubs.delivery.connection import connection_from_config
from target_azure_eventhubs.errors import ConfigurationError
from target_azure_eventhubs.target import TargetAzureEventHubs
from tests.packaging.conftest import DEFINITION, ROOT, pyproject

# From Meltano Hub's schemas for loader definitions (schemas/plugin_definitions/
# loaders.schema.json and the common, loader-specific and setting schemas it refers to).
HUB_REQUIRED = {"name", "namespace", "variant", "label", "quality"}
HUB_KEYS = HUB_REQUIRED | {
    "capabilities", "pip_url", "description", "executable", "repo", "logo_url", "settings",
    "docs", "python", "settings_group_validation", "commands", "dialect", "target_schema",
    "hidden", "requires", "maintenance_status", "domain_url", "keywords", "definition",
    "next_steps", "settings_preamble", "usage", "prereq", "supported_python_versions",
    "log_parser",
}  # fmt: skip
HUB_SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options",
    "docs", "hidden", "sensitive",
}  # fmt: skip
HUB_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string", "decimal",
}  # fmt: skip
HUB_LOADER_CAPABILITIES = {
    "about", "stream-maps", "activate-version", "batch", "soft-delete", "hard-delete",
    "datatype-failsafe", "schema-flattening", "target-schema", "validate-records",
    "structured-logging",
}  # fmt: skip
# A value for each setting a connection group may name.
SAMPLE_VALUES = {
    "connection_string": (
        "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=send;"
        "SharedAccessKey=not-a-key;EntityPath=profiles"
    ),
    "namespace": "contoso",
    "eventhub_name": "profiles",
    "sas_key_name": "send",
    "sas_key": "not-a-key",
    "use_entra_id": True,
}


@pytest.fixture(scope="module")
def plugin() -> dict:
    return yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))


def _settings(plugin_or_loader: dict) -> dict[str, dict]:
    return {s["name"]: s for s in plugin_or_loader["settings"]}


def test_definition_is_what_the_generator_makes_from_about():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "update_plugin_definition.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (
        f"{done.stdout}{done.stderr[-3000:]}\n"
        "regenerate it: .venv/bin/python scripts/update_plugin_definition.py"
    )


def test_definition_follows_the_hub_schema(plugin: dict):
    assert HUB_REQUIRED <= set(plugin) <= HUB_KEYS, set(plugin) ^ HUB_KEYS
    assert set(plugin["capabilities"]) <= HUB_LOADER_CAPABILITIES
    assert all(re.fullmatch(r"3\.\d+", v) for v in plugin["supported_python_versions"])
    for setting in plugin["settings"]:
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
        assert setting["kind"] in HUB_KINDS, setting["name"]
        assert setting["label"] and setting["description"], setting["name"]
        if setting["kind"] == "options":
            assert all(set(o) == {"label", "value"} for o in setting["options"])


def test_definition_installs_this_package_and_runs_its_command(plugin: dict):
    project = pyproject()
    # Until a release is published, the definition installs from the public repository.
    assert plugin["pip_url"] == f"git+{project['urls']['Repository']}.git"
    assert plugin["executable"] in project["scripts"]
    assert plugin["namespace"] == plugin["name"].replace("-", "_")
    assert plugin["repo"] == project["urls"]["Repository"]


def test_every_declared_setting_is_defined_and_secrets_are_sensitive(plugin: dict):
    # The target's own settings; `--about` adds singer-sdk's built-in ones after them.
    declared = TargetAzureEventHubs.config_jsonschema["properties"]
    defined = _settings(plugin)
    assert list(defined)[: len(declared)] == list(declared)
    for name, setting in defined.items():
        secret = bool(declared.get(name, {}).get("secret"))
        assert setting.get("sensitive", False) == secret, name
    assert {n for n, s in defined.items() if s.get("sensitive")} >= {
        "sas_key",
        "connection_string",
        "client_secret",
    }


def test_each_settings_group_is_one_complete_way_to_connect(plugin: dict):
    groups = plugin["settings_group_validation"]
    assert len(groups) == 3
    for group in groups:
        config = {name: SAMPLE_VALUES[name] for name in group}
        spec = connection_from_config(config)  # complete: the target accepts it
        assert spec.default_eventhub == "profiles"
        for name in group:  # minimal: without any one of its settings, it does not
            with pytest.raises(ConfigurationError):
                connection_from_config({k: v for k, v in config.items() if k != name})
    methods = {connection_from_config({n: SAMPLE_VALUES[n] for n in g}).method for g in groups}
    assert methods == {"connection_string", "sas_key", "entra_id"}


def test_project_meltano_yml_declares_the_same_settings(plugin: dict):
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    loader = next(p for p in project["plugins"]["loaders"] if p["name"] == "target-azure-eventhubs")

    def shape(settings: dict[str, dict]) -> dict[str, tuple[str, bool]]:
        return {n: (s["kind"], s.get("sensitive", False)) for n, s in settings.items()}

    assert shape(_settings(loader)) == shape(_settings(plugin)), (
        "meltano.yml's target-azure-eventhubs settings (name, kind, sensitive) differ from "
        "plugin/target-azure-eventhubs.yml"
    )
    assert loader["capabilities"] == plugin["capabilities"]
