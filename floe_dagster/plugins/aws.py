"""AWS for every plugin that calls it: the shared config (region, endpoints, one credential mode,
retries), the one function that turns it into client properties, and AWS error mapping.

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
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from floe_dagster.core.errors import (
    AuthenticationError,
    CatalogUnavailableError,
    ConfigurationError,
    ConflictError,
    FloeError,
    NotFoundError,
)
from floe_dagster.plugins.aws_credentials import DEFAULT_SESSION_NAME, aws_session, frozen_keys
from floe_dagster.plugins.base import PluginConfig, http_endpoint
from floe_dagster.plugins.redaction import SecretProperties

if TYPE_CHECKING:
    pass

DEFAULT_MAX_ATTEMPTS = 5
# Reconnect (assume the role again) this long before the temporary credentials expire.
ROLE_REFRESH_MARGIN_S = 300
MASK = "**********"

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
S3_FORCE_VIRTUAL_ADDRESSING = "s3.force-virtual-addressing"

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# Any region name an S3-compatible store uses (cn-hangzhou, ap-guangzhou, auto, us-east-1 ...).
_STORE_REGION = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
PERMISSION_PATTERN = re.compile(r"not authorized to perform:?\s+([A-Za-z0-9-]+:[A-Za-z0-9*]+)")

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
    S3_FORCE_VIRTUAL_ADDRESSING,
    "s3.profile-name",
    "s3.role-arn",
    "s3.role-session-name",
}

# botocore error codes, by floe error class.
AUTH_CODES = {
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
THROTTLING_CODES = {
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
UNAVAILABLE_CODES = {
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
ARROW_TRANSIENT = (
    "INTERNAL_FAILURE",
    "NETWORK_CONNECTION",
    "REQUEST_TIMEOUT",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "THROTTLING",
)
NOT_FOUND_CODES = {"EntityNotFoundException", "NoSuchBucket", "NoSuchKey"}
CONFLICT_CODES = {"AlreadyExistsException", "ConcurrentModificationException"}


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
        [InitErrorDetails(type=PydanticCustomError("region", message), loc=(field,), input=MASK)],
        hide_input=True,
    )


def aws_url(value: str | None) -> str | None:
    """An endpoint override: an http(s) URL without user info, trailing slash removed."""
    return http_endpoint(value, "https://glue.eu-west-1.amazonaws.com")


class AwsCredentialsConfig(PluginConfig):
    """Region and credentials: the AWS settings every AWS plugin config inherits (the Glue
    catalog, the Glue and S3 metastores), declared and checked once.

    One credential mode, chosen by which fields are set: static keys (+ session token), a named
    profile, role assumption (``role_arn`` with any of those or the default chain as source), or
    nothing: the AWS SDK's default chain. ``aws_client_properties`` resolves them.
    """

    credential_kind: ClassVar[Literal["thrift", "aws", "google"] | None] = "aws"
    # Never echo inputs (they may be secrets) in the text of validation errors.
    model_config = ConfigDict(hide_input_in_errors=True)

    region: str | None = Field(
        None,
        description="AWS region, e.g. eu-west-1. Unset: AWS_REGION or AWS_DEFAULT_REGION.",
    )
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
            "Attempts per AWS call in all, first one included; throttling, 5xx and connection errors are"
            " retried with exponential backoff (botocore 'standard' retry mode)."
        ),
    )

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        # the form only: an S3-compatible store names its regions its own way (cn-hangzhou for
        # OSS, ap-guangzhou for COS, auto for R2); a non-AWS name needs an endpoint (AwsConfig)
        if value is not None and not _STORE_REGION.match(value):
            raise ValueError(
                "must be a region name of lowercase letters, digits and hyphens: an AWS region such as"
                " us-east-1, or with an endpoint the store's own (cn-hangzhou, ap-guangzhou, auto)"
            )
        return value

    @field_validator("sts_endpoint")
    @classmethod
    def _check_sts_endpoint(cls, value: str | None) -> str | None:
        return aws_url(value)

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

    def credential_problems(self) -> list[tuple[str, str]]:
        """(field, problem) for every way the set fields mix credential modes."""
        problems: list[tuple[str, str]] = []
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
        return problems

    @model_validator(mode="after")
    def _one_credential_mode(self) -> Self:
        problems = self.credential_problems()
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("credential_mode", message),
                        loc=(name,),
                        input=MASK if name in ("secret_access_key", "session_token") else getattr(self, name),
                    )
                    for name, message in problems
                ],
                hide_input=True,
            )
        return self

    def client_config(self, **fields: Any) -> AwsConfig:
        """These credentials as an AWS client config, with ``fields`` (region, endpoints, ...) on
        top: what ``aws_client_properties`` and the credential resolver take. Unset fields are
        left to the client config's defaults (role_duration_s too, unless it was set here)."""
        own = {
            "region": self.region,
            "sts_endpoint": self.sts_endpoint,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "profile": self.profile,
            "role_arn": self.role_arn,
            "external_id": self.external_id,
            "session_name": self.session_name,
            "role_duration_s": self.role_duration_s if "role_duration_s" in self.model_fields_set else None,
            "max_attempts": self.max_attempts,
        }
        merged = {**own, **fields}
        return AwsConfig.model_validate({k: v for k, v in merged.items() if v is not None})

    @property
    def credential_mode(self) -> str:
        if self.role_arn is not None:
            return "assume_role"
        if self.access_key_id is not None:
            return "static"
        if self.profile is not None:
            return "profile"
        return "default_chain"


class AwsConfig(AwsCredentialsConfig):
    """What an AWS client needs beyond the credentials: endpoints, the Glue catalog's id and
    warehouse, further PyIceberg properties; the region is required (from the SDK chain when
    unset). ``aws_client_properties`` turns it into PyIceberg's ``glue.*`` / ``s3.*`` properties;
    the metastores build one from their own fields (``aws_config()``)."""

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
    s3_addressing_style: Literal["path", "virtual"] | None = Field(
        None,
        description=(
            "How S3 requests name the bucket: path (endpoint/bucket/key) or virtual"
            " (bucket.endpoint/key). Unset: path with s3_endpoint, the SDK's choice on AWS."
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

    @field_validator("endpoint", "s3_endpoint")
    @classmethod
    def _check_endpoints(cls, value: str | None) -> str | None:
        return aws_url(value)

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

    def credential_problems(self) -> list[tuple[str, str]]:
        problems = super().credential_problems()
        foreign = self.region is not None and not _REGION.match(self.region)
        if foreign and not (self.endpoint or self.s3_endpoint):
            problems.insert(
                0,
                (
                    "region",
                    f"'{self.region}' is not an AWS region name (such as us-east-1); a region name of"
                    " another store (cn-hangzhou, ap-guangzhou, auto) needs that store's endpoint",
                ),
            )
        if self.region is None:
            problems.insert(
                0,
                (
                    "region",
                    "is not set: set region (e.g. eu-west-1), or AWS_REGION / AWS_DEFAULT_REGION, "
                    "or a region in the AWS profile",
                ),
            )
        return problems

    @property
    def aws_region(self) -> str:
        """The region (the config's, or the SDK chain's: validation guarantees one)."""
        assert self.region is not None
        return self.region


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
            masked = pattern.sub(rf"\g<1>{MASK}", masked)
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


def aws_client_properties(config: AwsConfig) -> dict[str, str]:
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
    props.update(s3_addressing_properties(config))
    if config.catalog_id:
        props[GLUE_ID] = config.catalog_id

    key_id: str | None = config.access_key_id
    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
    token = config.session_token.get_secret_value() if config.session_token else None

    if config.role_arn is not None or config.profile is not None:
        # the one AWS resolver (plugins/aws_credentials.py): a role is assumed with STS, a
        # profile resolved (SSO, source_profile ...); S3 (PyArrow) needs the keys themselves
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


def s3_addressing_properties(config: AwsConfig) -> dict[str, str]:
    """PyIceberg's (PyArrow FileIO) addressing property: virtual-hosted when the config says so."""
    if config.s3_addressing_style == "virtual":
        return {S3_FORCE_VIRTUAL_ADDRESSING: "true"}
    return {}


def aws_error_class(exc: Exception) -> type[FloeError] | None:
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
        if code in AUTH_CODES:
            return AuthenticationError
        if code in THROTTLING_CODES or code in UNAVAILABLE_CODES or status >= 500:
            return CatalogUnavailableError
        if code in NOT_FOUND_CODES:
            return NotFoundError
        if code in CONFLICT_CODES:
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
        if any(word in text for word in ARROW_TRANSIENT):
            return CatalogUnavailableError
    return None


def aws_attempts(exc: Exception) -> int | None:
    """How many calls botocore made for an AWS error answer (its retries + 1); None if unknown."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return None
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1


__all__ = [
    "GLUE_MAX_RETRIES",
    "MASK",
    "PERMISSION_PATTERN",
    "ROLE_REFRESH_MARGIN_S",
    "S3_ACCESS_KEY_ID",
    "S3_ENDPOINT",
    "S3_FORCE_VIRTUAL_ADDRESSING",
    "S3_SECRET_ACCESS_KEY",
    "S3_SESSION_TOKEN",
    "THROTTLING_CODES",
    "UNAVAILABLE_CODES",
    "AwsConfig",
    "aws_attempts",
    "aws_client_properties",
    "aws_error_class",
    "s3_addressing_properties",
]
