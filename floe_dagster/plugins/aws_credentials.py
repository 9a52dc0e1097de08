"""The AWS credential chain, resolved with boto3 for every AWS plugin (Glue catalog, Glue and S3
metastores), one module for the three configs (they all reach it through ``aws_config()``, a
``GlueCatalogConfig``).

``aws_session(config)`` is a boto3 session whose credentials come from the config's mode:

* static keys (+ session token);
* a named ``profile`` (the AWS config/credentials files, ``AWS_SHARED_CREDENTIALS_FILE`` /
  ``AWS_CONFIG_FILE``; SSO and ``role_arn``/``source_profile`` profiles included: botocore
  refreshes them);
* the default chain: environment, shared files, SSO, container (ECS/EKS) and instance roles,
  exactly boto3's order;
* ``role_arn``: STS ``AssumeRole`` from any of the above as source credentials, wrapped in
  botocore's ``RefreshableCredentials`` so the role is assumed again before it expires (botocore
  refreshes 15 minutes ahead, at most 10 minutes ahead when mandatory).

Clients made from the session refresh on their own; ``frozen_keys(session)`` is a current
snapshot (refreshed if due) for consumers that take literal keys: PyArrow's S3 FileIO and DuckDB,
whose secret then needs no ``aws`` extension (``PROVIDER credential_chain`` did, and it is not
shipped offline). Nothing here logs or formats a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_SESSION_NAME", "FrozenKeys", "aws_session", "frozen_keys"]

# the role session name when a config names none (shows in CloudTrail)
DEFAULT_SESSION_NAME = "floe-dagster"


@dataclass(frozen=True)
class FrozenKeys:
    access_key_id: str
    secret_access_key: str
    session_token: str | None

    def __repr__(self) -> str:  # never the secret half
        return f"FrozenKeys(access_key_id={self.access_key_id!r}, secret_access_key='**********')"


def _source_session(config: Any) -> Any:
    import boto3

    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
    token = config.session_token.get_secret_value() if config.session_token else None
    return boto3.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        profile_name=config.profile,
        region_name=config.aws_region,
    )


def _assume_role_credentials(config: Any, source: Any) -> Any:
    """Credentials of ``config.role_arn``, assumed from ``source`` now and again before expiry."""
    from botocore.config import Config
    from botocore.credentials import RefreshableCredentials

    sts = source.client(
        "sts",
        endpoint_url=config.sts_endpoint,
        config=Config(retries={"total_max_attempts": config.max_attempts, "mode": "standard"}),
    )
    request: dict[str, Any] = {
        "RoleArn": config.role_arn,
        "RoleSessionName": config.session_name or DEFAULT_SESSION_NAME,
        "DurationSeconds": config.role_duration_s,
    }
    if config.external_id:
        request["ExternalId"] = config.external_id

    def refresh() -> dict[str, str]:
        assumed = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": assumed["AccessKeyId"],
            "secret_key": assumed["SecretAccessKey"],
            "token": assumed["SessionToken"],
            "expiry_time": assumed["Expiration"].isoformat(),
        }

    return RefreshableCredentials.create_from_metadata(
        metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
    )


def aws_session(config: Any) -> Any:
    """A boto3 session with ``config``'s credentials (refreshing ones for a role); may call STS."""
    import boto3
    import botocore.session

    source = _source_session(config)
    if config.role_arn is None:
        return source
    core = botocore.session.Session()
    core._credentials = _assume_role_credentials(config, source)  # botocore's documented hook
    return boto3.Session(botocore_session=core, region_name=config.aws_region)


def frozen_keys(session: Any) -> FrozenKeys | None:
    """The session's current keys (refreshed first when due); None when the chain has none."""
    credentials = session.get_credentials()
    if credentials is None:
        return None
    frozen = credentials.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        return None
    return FrozenKeys(frozen.access_key, frozen.secret_key, frozen.token or None)
