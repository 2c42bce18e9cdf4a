"""The exceptions conveyor raises on purpose.

Each message says what is wrong, where (file, column, config key) and what to
do. The CLI prints the message as one line and exits with ``exit_code``.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Base class: a failure conveyor understands and can explain."""

    exit_code = 1


class ConfigError(ConveyorError):
    """The configuration file is missing or invalid."""

    exit_code = 2


class InputError(ConveyorError):
    """A file given by the user cannot be used (missing columns, unreadable)."""

    exit_code = 2


class SourceError(ConveyorError):
    """The data source of the stream cannot be read."""


class LockedError(ConveyorError):
    """Another process holds the workspace lock."""

    exit_code = 3


class ModelError(ConveyorError):
    """No usable model: none trained yet, or a model file failed verification."""
