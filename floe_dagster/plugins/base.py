"""What every plugin kind shares: a type name, a pydantic config model, an API version."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

PLUGIN_API_VERSION = "1.0"


class PluginConfig(BaseModel):
    """Base of every plugin's config model: unknown keys are errors, secrets are SecretStr."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin:
    """Base of the three plugin kinds.

    Subclasses set ``type_name`` (the entry-point name used as ``type:`` in the manifest) and
    ``config_model``. Abstract methods of the kind's contract are enforced by ``abc``: a plugin
    that misses one fails at instantiation with the missing method named.
    """

    type_name: ClassVar[str]
    config_model: ClassVar[type[PluginConfig]] = PluginConfig
    plugin_api_version: ClassVar[str] = PLUGIN_API_VERSION
    version: ClassVar[str] = "0.1.0"

    @classmethod
    def parse_config(cls, raw: dict[str, Any]) -> PluginConfig:
        return cls.config_model.model_validate(raw)

    @classmethod
    def config_json_schema(cls) -> dict[str, Any]:
        return cls.config_model.model_json_schema()
