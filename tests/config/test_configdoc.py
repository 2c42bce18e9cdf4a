"""docs/configuration.md is generated from the config models and must match them."""

from pathlib import Path

from conveyor.config import Config
from conveyor.configdoc import reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/configuration.md is stale: run `python -m conveyor.configdoc > "
        "docs/configuration.md`")


def test_every_key_is_documented():
    text = reference()
    for name, field in Config.model_fields.items():
        assert f"`{field.alias or name}`" in text
        assert field.description, f"config key '{name}' has no description"
