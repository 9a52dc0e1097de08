"""PyIceberg ``GlueCatalog``: Iceberg tables registered in the AWS Glue Data Catalog, data on S3.

The AWS settings (credential modes, region, endpoints, retries) and their client properties are
shared with the Glue and S3 metastores: see ``floe_dagster/plugins/aws.py``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from floe_dagster.catalogs.pyiceberg_base import PyIcebergCatalogPlugin
from floe_dagster.core.errors import (
    CatalogAuthenticationError,
    CatalogUnavailableError,
    FloeError,
    catalog_variant,
)
from floe_dagster.plugins.aws import (
    GLUE_MAX_RETRIES,
    MASK,
    PERMISSION_PATTERN,
    ROLE_REFRESH_MARGIN_S,
    AwsConfig,
    aws_attempts,
    aws_client_properties,
    aws_error_class,
)
from floe_dagster.plugins.redaction import revealed

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

__all__ = [
    "GlueCatalogConfig",
    "GlueCatalogPlugin",
]


class GlueCatalogConfig(AwsConfig):
    """The Glue catalog's config: the shared AWS settings (plugins/aws.py)."""


class GlueCatalogPlugin(PyIcebergCatalogPlugin):
    type_name: ClassVar[str] = "glue"
    config_model = GlueCatalogConfig
    config: GlueCatalogConfig
    nested_namespaces: ClassVar[bool] = False
    namespace_kind: ClassVar[str] = "Glue namespaces (databases)"

    _expires_at: float | None = None
    _secrets: tuple[str, ...] = ()

    def catalog_properties(self) -> dict[str, str]:
        props = {**revealed(self.config.properties), "type": "glue", **aws_client_properties(self.config)}
        if self.config.warehouse:
            props["warehouse"] = self.config.warehouse
        return props

    def open_catalog(self) -> Catalog:
        from pyiceberg.catalog.glue import GlueCatalog

        props: dict[str, Any] = self.catalog_properties()
        self._secrets = tuple(
            value
            for key, value in props.items()
            if key.endswith(("secret-access-key", "session-token")) and value
        )
        # PyIceberg hands glue.max-retries to botocore as is, which needs an int.
        props[GLUE_MAX_RETRIES] = int(props[GLUE_MAX_RETRIES])
        return GlueCatalog(self.name, **props)

    def _connected(self) -> Catalog | None:
        if self._expires_at is not None and time.monotonic() >= self._expires_at:
            return None  # the assumed role's credentials are about to expire: assume it again
        return self._catalog

    def _publish(self, catalog: Catalog, opened_at: float) -> None:
        super()._publish(catalog, opened_at)
        if self.config.role_arn is not None:
            # opened_at is taken before AssumeRole: the credentials live at least this long
            self._expires_at = opened_at + self.config.role_duration_s - ROLE_REFRESH_MARGIN_S

    def map_error(self, exc: Exception, operation: str, subject: str = "") -> FloeError:
        mapped = super().map_error(exc, operation, subject)
        target = catalog_variant(aws_error_class(exc) or type(mapped))  # a CatalogError of that kind
        message = mapped.message + self._error_note(exc, target)
        for secret in self._known_secrets():
            message = message.replace(secret, MASK)
        if target is CatalogUnavailableError:
            return CatalogUnavailableError(
                message, provider=mapped.provider, operation=mapped.operation, attempts=aws_attempts(exc)
            )
        return target(message, provider=mapped.provider, operation=mapped.operation)

    def _error_note(self, exc: Exception, target: type[FloeError]) -> str:
        if isinstance(exc, ImportError):
            return "; install pyiceberg[glue] (boto3)"
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            if target is CatalogUnavailableError:
                return f" (max_attempts={self.config.max_attempts})"
            return ""
        if target is CatalogAuthenticationError:
            match = PERMISSION_PATTERN.search(exc.response.get("Error", {}).get("Message", "") or str(exc))
            if match:
                return f" (missing IAM permission: {match.group(1)})"
            return f" (AWS error {exc.response.get('Error', {}).get('Code', '?')})"
        if target is CatalogUnavailableError:
            attempts = aws_attempts(exc)
            return f" (gave up after {attempts} attempt(s), max_attempts={self.config.max_attempts})"
        return ""

    def _known_secrets(self) -> list[str]:
        values = [*self._secrets]
        for field in (self.config.secret_access_key, self.config.session_token):
            if field is not None:
                values.append(field.get_secret_value())
        return [value for value in values if len(value) >= 4]

    def describe(self) -> dict[str, str]:
        facts = {
            **super().describe(),
            "region": self.config.aws_region,
            "credentials": self.config.credential_mode,
        }
        for key in ("warehouse", "catalog_id", "endpoint", "s3_endpoint", "profile", "role_arn"):
            value = getattr(self.config, key)
            if value:
                facts[key] = value
        return facts
