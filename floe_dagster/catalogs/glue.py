"""PyIceberg ``GlueCatalog``: Iceberg tables registered in the AWS Glue Data Catalog, data on S3.

AWS credentials come in one of four modes, chosen by which fields are set:

* static keys: ``access_key_id`` + ``secret_access_key`` (+ ``session_token`` for temporary keys);
* a named ``profile`` from the AWS config/credentials files;
* role assumption: ``role_arn`` (+ ``external_id``, ``session_name``), with the static keys, the
  profile or the default chain as source credentials; temporary credentials come from STS
  ``AssumeRole`` when the plugin connects and are renewed by reconnecting before they expire;
* nothing set: boto3's and the AWS SDK's default chains (environment, instance/task role, ...).

:func:`aws_client_properties` is the one place that turns this config into PyIceberg's
``glue.*`` (catalog client) and ``s3.*`` (PyArrow FileIO) properties. Glue calls are retried by
botocore in ``standard`` mode up to ``max_attempts`` attempts in all; what still fails is mapped
to floe's errors (throttling and 5xx: ``CatalogUnavailableError``, retryable; access denied:
``CatalogAuthenticationError`` naming the missing IAM permission when AWS says which).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from floe_dagster.catalogs.pyiceberg_base import PyIcebergCatalogPlugin
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.errors import (
    AuthenticationError,
    CatalogAuthenticationError,
    CatalogUnavailableError,
    ConfigurationError,
    ConflictError,
    FloeError,
    NotFoundError,
    catalog_variant,
)
from floe_dagster.plugins.redaction import SecretProperties, revealed

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_SESSION_NAME = "floe-dagster"
# Reconnect (assume the role again) this long before the temporary credentials expire.
ROLE_REFRESH_MARGIN_S = 300
_MASK = "**********"

# PyIceberg 0.12 property names (pyiceberg.catalog.glue and pyiceberg.io).
GLUE_REGION = "glue.region"
GLUE_ENDPOINT = "glue.endpoint"
GLUE_ID = "glue.id"
GLUE_PROFILE_NAME = "glue.profile-name"
GLUE_ACCESS_KEY_ID = "glue.access-key-id"
GLUE_SECRET_ACCESS_KEY = "glue.secret-access-key"
GLUE_SESSION_TOKEN = "glue.session-token"
GLUE_MAX_RETRIES = "glue.max-retries"
GLUE_RETRY_MODE = "glue.retry-mode"
S3_REGION = "s3.region"
S3_ENDPOINT = "s3.endpoint"
S3_ACCESS_KEY_ID = "s3.access-key-id"
S3_SECRET_ACCESS_KEY = "s3.secret-access-key"
S3_SESSION_TOKEN = "s3.session-token"

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_PERMISSION = re.compile(r"not authorized to perform:?\s+([A-Za-z0-9-]+:[A-Za-z0-9*]+)")

# Properties that have a field of their own (or are credentials): refused in ``properties``.
_RESERVED_PREFIXES = ("client.", "botocore")
_RESERVED_KEYS = {
    "type",
    "warehouse",
    GLUE_REGION,
    GLUE_ENDPOINT,
    GLUE_ID,
    GLUE_PROFILE_NAME,
    GLUE_ACCESS_KEY_ID,
    GLUE_SECRET_ACCESS_KEY,
    GLUE_SESSION_TOKEN,
    GLUE_MAX_RETRIES,
    GLUE_RETRY_MODE,
    S3_REGION,
    S3_ENDPOINT,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    S3_SESSION_TOKEN,
    "s3.profile-name",
    "s3.role-arn",
    "s3.role-session-name",
}

# botocore error codes, by floe error class.
_AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "InvalidToken",
    "MissingAuthenticationTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}
_THROTTLING_CODES = {
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
}
_UNAVAILABLE_CODES = {
    "InternalError",
    "InternalFailure",
    "InternalServiceException",
    "OperationTimeoutException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
}
# AWS SDK for C++ error names in PyArrow's S3 errors ("AWS Error SLOW_DOWN during ...").
_ARROW_TRANSIENT = (
    "INTERNAL_FAILURE",
    "NETWORK_CONNECTION",
    "REQUEST_TIMEOUT",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "THROTTLING",
)
_NOT_FOUND_CODES = {"EntityNotFoundException", "NoSuchBucket", "NoSuchKey"}
_CONFLICT_CODES = {"AlreadyExistsException", "ConcurrentModificationException"}


def sdk_region(profile: str | None) -> tuple[str, str] | None:
    """The region the AWS SDK would use, and where it came from: AWS_REGION, AWS_DEFAULT_REGION,
    then the ``region`` of ``profile`` (or of AWS_PROFILE / the default profile) in the config file.
    """
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip(), variable
    try:
        import botocore.session
        from botocore.exceptions import BotoCoreError

        session = botocore.session.Session(profile=profile)
        region = session.get_scoped_config().get("region")
    except (ImportError, BotoCoreError):  # no boto3, or an unknown profile (reported on connect)
        return None
    if not region:
        return None
    return str(region), f"the region of profile '{session.profile or 'default'}'"


def _field_error(model: str, field: str, message: str) -> ValidationError:
    return ValidationError.from_exception_data(
        model,
        [InitErrorDetails(type=PydanticCustomError("region", message), loc=(field,), input=_MASK)],
        hide_input=True,
    )


def _optional_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://glue.eu-west-1.amazonaws.com")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    return value.rstrip("/")


class GlueCatalogConfig(PluginConfig):
    # Never echo inputs (they may be secrets) in the text of validation errors.
    model_config = ConfigDict(hide_input_in_errors=True)

    region: str | None = Field(
        None,
        description=(
            "AWS region of the Glue Data Catalog, e.g. eu-west-1. Unset: as the AWS SDK finds it, from "
            "AWS_REGION, AWS_DEFAULT_REGION, then the profile's region in the AWS config file."
        ),
    )
    warehouse: str | None = Field(
        None,
        description=(
            "Root for new tables, s3://bucket/prefix (tables go to <warehouse>/<namespace>.db/<table> "
            "unless the namespace has a location). Unset: every namespace needs a location."
        ),
    )
    catalog_id: str | None = Field(
        None,
        description="AWS account ID owning the Glue catalog (cross-account access). Unset: the caller's.",
    )
    endpoint: str | None = Field(
        None, description="Glue endpoint override (VPC endpoint, moto, ...). Unset: the regional endpoint."
    )
    s3_endpoint: str | None = Field(None, description="S3 endpoint override. Unset: the regional endpoint.")
    sts_endpoint: str | None = Field(
        None, description="STS endpoint override, used for role_arn. Unset: the regional endpoint."
    )
    access_key_id: str | None = Field(
        None, min_length=1, description="Static credentials: access key ID (use ${env:NAME})."
    )
    secret_access_key: SecretStr | None = Field(
        None, min_length=1, description="Static credentials: secret access key (use ${env:NAME})."
    )
    session_token: SecretStr | None = Field(
        None, min_length=1, description="Static credentials: session token of temporary keys."
    )
    profile: str | None = Field(
        None, min_length=1, description="Named profile of the AWS config/credentials files."
    )
    role_arn: str | None = Field(
        None,
        description=(
            "IAM role to assume with STS (source credentials: the static keys, the profile or the default "
            "chain), e.g. arn:aws:iam::123456789012:role/floe."
        ),
    )
    external_id: str | None = Field(
        None, min_length=2, max_length=1224, description="External ID the role's trust policy requires."
    )
    session_name: str | None = Field(
        None, description=f"Role session name (shows in CloudTrail). Default: {DEFAULT_SESSION_NAME}."
    )
    role_duration_s: int = Field(
        3600, ge=900, le=43200, description="Lifetime of the assumed role's temporary credentials."
    )
    max_attempts: int = Field(
        DEFAULT_MAX_ATTEMPTS,
        ge=1,
        le=20,
        description=(
            "Attempts per Glue (and STS) call in all, first one included; throttling, 5xx and connection "
            "errors are retried with exponential backoff (botocore 'standard' retry mode)."
        ),
    )
    properties: SecretProperties = Field(
        default_factory=dict,
        description="Further PyIceberg properties, e.g. s3.connect-timeout, glue.skip-archive.",
    )

    @model_validator(mode="before")
    @classmethod
    def _region_from_the_sdk_chain(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("region"):
            return data
        found = sdk_region(data.get("profile"))
        if found is None:
            return data
        region, source = found
        if not _REGION.match(region):
            raise _field_error(
                cls.__name__, "region", f"is unset and {source} = {region!r} is not an AWS region name"
            )
        return {**data, "region": region}

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError("must be an AWS region name such as us-east-1 or eu-west-1")
        return value

    @field_validator("warehouse")
    @classmethod
    def _check_warehouse(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("must be an S3 URI, s3://bucket/prefix")
        return value.rstrip("/")

    @field_validator("catalog_id")
    @classmethod
    def _check_catalog_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{12}", value):
            raise ValueError("must be a 12-digit AWS account ID")
        return value

    @field_validator("endpoint", "s3_endpoint", "sts_endpoint")
    @classmethod
    def _check_endpoints(cls, value: str | None) -> str | None:
        return _optional_url(value)

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError("must be an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>")
        return value

    @field_validator("session_name")
    @classmethod
    def _check_session_name(cls, value: str | None) -> str | None:
        if value is not None and not _SESSION_NAME.match(value):
            raise ValueError("must be 2-64 characters of letters, digits and +=,.@_-")
        return value

    @field_validator("properties")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key in _RESERVED_KEYS or key.startswith(_RESERVED_PREFIXES):
                raise ValueError(
                    f"'{key}' is set by the plugin's own fields (region, endpoints, credentials, "
                    "max_attempts), not in properties"
                )
        return value

    @model_validator(mode="after")
    def _one_credential_mode(self) -> GlueCatalogConfig:
        problems: list[tuple[str, str]] = []
        if self.region is None:
            problems.append(
                (
                    "region",
                    "is not set: set region (e.g. eu-west-1), or AWS_REGION / AWS_DEFAULT_REGION, "
                    "or a region in the AWS profile",
                )
            )
        if self.access_key_id is not None and self.secret_access_key is None:
            problems.append(("secret_access_key", "is required when access_key_id is set"))
        if self.secret_access_key is not None and self.access_key_id is None:
            problems.append(("access_key_id", "is required when secret_access_key is set"))
        if self.session_token is not None and (self.access_key_id is None or self.secret_access_key is None):
            problems.append(("session_token", "needs access_key_id and secret_access_key as well"))
        if self.profile is not None and (
            self.access_key_id is not None or self.secret_access_key is not None
        ):
            problems.append(
                (
                    "profile",
                    "conflicts with access_key_id/secret_access_key: use static keys or a named profile, "
                    "not both",
                )
            )
        if self.role_arn is None:
            for name in ("external_id", "session_name", "role_duration_s"):
                if name in self.model_fields_set:
                    problems.append((name, "only applies to role assumption: set role_arn too"))
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("credential_mode", message),
                        loc=(name,),
                        input=_MASK
                        if name in ("secret_access_key", "session_token")
                        else getattr(self, name),
                    )
                    for name, message in problems
                ],
                hide_input=True,
            )
        return self

    @property
    def aws_region(self) -> str:
        """The region (the config's, or the SDK chain's: validation guarantees one)."""
        assert self.region is not None
        return self.region

    @property
    def credential_mode(self) -> str:
        if self.role_arn is not None:
            return "assume_role"
        if self.access_key_id is not None:
            return "static"
        if self.profile is not None:
            return "profile"
        return "default_chain"


# What botocore's DEBUG logs show of credentials: the session token in request headers and
# canonical requests, and the keys in STS answers (XML) or other JSON bodies.
_LOGGED_CREDENTIALS = (
    re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}&]+", re.IGNORECASE),
    re.compile(r"(<(?:SecretAccessKey|SessionToken)>)[^<]*"),
    re.compile(r"(\"(?:SecretAccessKey|SessionToken|secretAccessKey|sessionToken)\"\s*:\s*\")[^\"]*"),
)
_BOTOCORE_LOGGERS = ("botocore.endpoint", "botocore.auth", "botocore.parsers")


class _BotocoreCredentialMask(logging.Filter):
    """Masks credentials in botocore's DEBUG records before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = text
        for pattern in _LOGGED_CREDENTIALS:
            masked = pattern.sub(rf"\g<1>{_MASK}", masked)
        if masked != text:
            record.msg, record.args = masked, None
        return True


def mask_credentials_in_botocore_logs() -> None:
    """botocore logs request headers (the session token) and STS answers (the assumed role's secret
    key) at DEBUG; mask them on the loggers that do. Idempotent; called before any AWS client is built.
    """
    for name in _BOTOCORE_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _BotocoreCredentialMask) for f in target.filters):
            target.addFilter(_BotocoreCredentialMask())


def aws_client_properties(config: GlueCatalogConfig) -> dict[str, str]:
    """PyIceberg's Glue client (``glue.*``) and S3 FileIO (``s3.*``) properties for ``config``.

    With ``role_arn`` this calls STS ``AssumeRole`` (botocore exceptions propagate). With a
    ``profile``, Glue gets the profile name and S3 (PyArrow, which knows no profiles) gets the
    profile's resolved credentials.
    """
    mask_credentials_in_botocore_logs()
    props: dict[str, str] = {
        GLUE_REGION: config.aws_region,
        S3_REGION: config.aws_region,
        GLUE_MAX_RETRIES: str(config.max_attempts - 1),  # botocore counts retries, not attempts
        GLUE_RETRY_MODE: "standard",
    }
    if config.endpoint:
        props[GLUE_ENDPOINT] = config.endpoint
    if config.s3_endpoint:
        props[S3_ENDPOINT] = config.s3_endpoint
    if config.catalog_id:
        props[GLUE_ID] = config.catalog_id

    key_id: str | None = config.access_key_id
    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
    token = config.session_token.get_secret_value() if config.session_token else None

    if config.role_arn is not None or config.profile is not None:
        # the one AWS resolver (plugins/aws_credentials.py): a role is assumed with STS, a
        # profile resolved (SSO, source_profile ...); S3 (PyArrow) needs the keys themselves
        from floe_dagster.plugins.aws_credentials import aws_session, frozen_keys

        if config.role_arn is None:
            props[GLUE_PROFILE_NAME] = str(config.profile)
        keys = frozen_keys(aws_session(config))
        if keys is not None:
            key_id, secret, token = keys.access_key_id, keys.secret_access_key, keys.session_token

    if key_id is not None and secret is not None:
        if config.profile is None or config.role_arn is not None:
            props[GLUE_ACCESS_KEY_ID] = key_id
            props[GLUE_SECRET_ACCESS_KEY] = secret
            if token:
                props[GLUE_SESSION_TOKEN] = token
        props[S3_ACCESS_KEY_ID] = key_id
        props[S3_SECRET_ACCESS_KEY] = secret
        if token:
            props[S3_SESSION_TOKEN] = token
    return props


def _aws_error_class(exc: Exception) -> type[FloeError] | None:
    """floe's class for boto3/botocore/PyArrow-S3 exceptions that PyIceberg lets through, else None."""
    if isinstance(exc, ImportError):
        return ConfigurationError  # boto3 missing: pyiceberg[glue] is not installed
    try:
        from botocore import exceptions as bce
    except ImportError:
        return None
    if isinstance(exc, bce.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _AUTH_CODES:
            return AuthenticationError
        if code in _THROTTLING_CODES or code in _UNAVAILABLE_CODES or status >= 500:
            return CatalogUnavailableError
        if code in _NOT_FOUND_CODES:
            return NotFoundError
        if code in _CONFLICT_CODES:
            return ConflictError
        return None
    if isinstance(exc, bce.HTTPClientError | bce.ConnectionError):
        return CatalogUnavailableError  # endpoint unreachable, connection reset, timeouts
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError | bce.ProfileNotFound):
        return ConfigurationError
    if isinstance(exc, bce.NoRegionError | bce.ConfigNotFound | bce.ConfigParseError):
        return ConfigurationError
    if isinstance(exc, bce.CredentialRetrievalError | bce.UnauthorizedSSOTokenError):
        return AuthenticationError
    if isinstance(exc, OSError) and "AWS Error" in str(exc):  # PyArrow's S3 filesystem
        text = str(exc)
        if "ACCESS_DENIED" in text:
            return AuthenticationError
        if any(word in text for word in _ARROW_TRANSIENT):
            return CatalogUnavailableError
    return None


def _attempts(exc: Exception) -> int | None:
    """How many calls botocore made for an AWS error answer (its retries + 1); None if unknown."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return None
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1


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
        target = catalog_variant(_aws_error_class(exc) or type(mapped))  # a CatalogError of that kind
        message = mapped.message + self._error_note(exc, target)
        for secret in self._known_secrets():
            message = message.replace(secret, _MASK)
        if target is CatalogUnavailableError:
            return CatalogUnavailableError(
                message, provider=mapped.provider, operation=mapped.operation, attempts=_attempts(exc)
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
            match = _PERMISSION.search(exc.response.get("Error", {}).get("Message", "") or str(exc))
            if match:
                return f" (missing IAM permission: {match.group(1)})"
            return f" (AWS error {exc.response.get('Error', {}).get('Code', '?')})"
        if target is CatalogUnavailableError:
            attempts = _attempts(exc)
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
