"""Reading ``conveyor.yaml``: size, encoding and YAML alias checks, validation with errors
that name the key, and paths resolved against the config's folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from conveyor.config.root import Config, config_model
from conveyor.errors import ConfigError
from conveyor.io.userfiles import check_regular_file

log = logging.getLogger(__name__)


def _describe(error: Any) -> str:  # pydantic's ErrorDetails
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see docs/configuration.md)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif "input" in error and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return f"{key}: {message}"


def _workspace_at(base_dir: Path, configured: Path) -> Path:
    """The workspace folder a config names, refused when it would hold the config's own
    folder (``workspace: .`` or ``../..`` would put raw/, models/... among the user's
    files); one outside the config's folder is allowed but said before it is created."""
    base, workspace = base_dir.resolve(), (base_dir / configured).resolve()
    if base.is_relative_to(workspace):
        raise ConfigError(
            f"invalid config: workspace '{configured}' is '{workspace}', which holds the "
            f"config's own folder '{base}'; conveyor fills its workspace with raw/, models/, "
            "logs/...: give it a folder of its own, e.g. `workspace: workspace`")
    if not workspace.is_relative_to(base) and not workspace.exists():
        log.warning("workspace '%s' is outside the config's folder '%s'; creating it there",
                    workspace, base)
    return workspace


# a config is a few kilobytes; anything near this is not one
MAX_CONFIG_BYTES = 1 << 20


def _refuse_aliases(text: str, path: Path) -> None:
    """Refuse YAML anchors and aliases: nine nested aliases expand to billions of nodes
    (a "billion laughs"), and conveyor's configs never need them. Linear in the text."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(
                    f"invalid config: '{path}' line {line} uses a YAML anchor or "
                    "alias (& or *); conveyor does not expand them: write the value out")
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from None


def parse_config(data: dict[str, Any], base_dir: Path) -> Config:
    """Validate a config mapping; relative paths are resolved against ``base_dir``."""
    try:
        config = config_model().model_validate(data)
    except ValidationError as exc:
        lines = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid config: {lines}") from None
    workspace = _workspace_at(base_dir, config.workspace)
    updates: dict[str, Any] = {"workspace": workspace}

    def located(table: Any) -> Any:
        if table.path is None:
            return table
        return table.model_copy(update={"path": (base_dir / table.path).resolve()})

    def stored_at(url: str | None) -> str | None:  # a folder relative to the config, or a URL
        return url if url is None or "://" in url else str((base_dir / url).resolve())

    updates["store"] = config.store.model_copy(update={
        "raw_url": stored_at(config.store.raw_url),
        "models_url": stored_at(config.store.models_url)})
    updates["source"] = located(config.source)
    updates["enrich"] = [located(e) for e in config.enrich]
    if config.serve.output_dir is not None:
        updates["serve"] = config.serve.model_copy(
            update={"output_dir": (base_dir / config.serve.output_dir).resolve()}
        )
    return config.model_copy(update=updates)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    check_regular_file(path, "config file", ConfigError, hint=(
        "; pass -config PATH or run from the folder that holds conveyor.yaml"))
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file '{path}' is {path.stat().st_size:,} bytes, over the "
                          f"{MAX_CONFIG_BYTES:,} a config may have; is it the right file?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not UTF-8 text (byte {exc.start})") from None
    _refuse_aliases(text, path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of sections")
    return parse_config(data, path.resolve().parent)
