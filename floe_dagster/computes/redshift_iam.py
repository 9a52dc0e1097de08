"""Amazon Redshift IAM authentication for the ``redshift`` compute (dbt-redshift's ``method: iam``).

With ``method: iam`` the dbt process gets temporary database credentials from the Redshift API
(``GetClusterCredentials`` for ``user`` on ``cluster_id`` in ``region``) instead of a password;
``method: iam_role`` lets the cluster's IAM role decide the database user (no ``user``). The AWS
credentials that call the API come from ONE place, floe's AWS credential chokepoint
(``floe_dagster/plugins/aws.py`` ``AwsConfig`` and ``aws_credentials.aws_session``), in one of its
modes, chosen by which fields are set:

- ``iam_profile``: a named profile of the AWS config/credentials files (dbt-redshift's key);
- ``access_key_id`` + ``secret_access_key`` (+ ``session_token``): static keys;
- ``role_arn`` (+ ``external_id``, ``session_name``): a role assumed through STS from the profile,
  the static keys or the default chain;
- nothing: the AWS SDK's default chain of the dbt process (environment, instance/task role).

What reaches dbt (secrets never in profiles.yml):

- the profile carries ``method``, ``cluster_id``, ``region``, ``user``, ``iam_profile``,
  ``db_groups``, ``autocreate``; with static keys and no session token, ``access_key_id`` and
  ``secret_access_key: "{{ env_var('FLOE_SECRET_<COMPUTE>_SECRET_ACCESS_KEY') }}"``;
- static keys with a session token (dbt-redshift has no key for it), or a role: the dbt process of
  this compute only gets ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``
  (for a role: assumed right before the process starts, ``prepare_dbt_run``), which the boto3
  session inside redshift_connector reads.

``validate_connection`` asks the Redshift API for temporary credentials through the chokepoint
(``aws_endpoint`` overrides the API's endpoint: a VPC endpoint, or a test server), then logs in over
the PostgreSQL wire protocol with them and runs ``SELECT 1``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError

from floe_dagster.plugins.aws import AwsConfig, aws_url
from floe_dagster.plugins.aws_credentials import aws_session, frozen_keys
from floe_dagster.plugins.base import PluginConfig, located_error
from floe_dagster.plugins.compute import secret_env_name, secret_reference

__all__ = [
    "IAM_METHODS",
    "RedshiftIamFields",
    "iam_dbt_env",
    "iam_problems",
    "iam_profile_keys",
    "temporary_login",
]

IAM_METHODS = ("iam", "iam_role")
RedshiftMethod = Literal["database", "iam", "iam_role"]
# GetClusterCredentials' DurationSeconds (900-3600): validation needs one login only
VALIDATION_DURATION_S = 900


class RedshiftIamFields(PluginConfig):
    """The IAM fields of the Redshift config (see the module doc)."""

    cluster_id: str | None = Field(None, description="IAM auth: the provisioned cluster's identifier.")
    iam_profile: str | None = Field(None, min_length=1, description="IAM auth: AWS named profile.")
    access_key_id: str | None = Field(None, min_length=1, description="IAM auth: static access key ID.")
    secret_access_key: SecretStr | None = Field(
        None, min_length=1, description="IAM auth: static secret access key (use ${env:NAME})."
    )
    session_token: SecretStr | None = Field(
        None, min_length=1, description="IAM auth: session token of temporary static keys."
    )
    role_arn: str | None = Field(None, description="IAM auth: role to assume through STS first.")
    external_id: str | None = Field(None, description="IAM auth: external ID of the role's trust policy.")
    session_name: str | None = Field(None, description="IAM auth: role session name (CloudTrail).")
    db_groups: list[str] = Field(default_factory=list, description="IAM auth: database groups to join.")
    autocreate: bool = Field(False, description="IAM auth: create the database user when missing.")
    aws_endpoint: str | None = Field(
        None, description="Redshift API endpoint override (VPC endpoint, a test server); validation only."
    )

    def aws_config(self) -> AwsConfig:
        """The AWS credentials of the IAM fields, validated by the AWS chokepoint's own model."""
        region = getattr(self, "region", None)
        raw = {
            "region": region,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "profile": self.iam_profile,
            "role_arn": self.role_arn,
            "external_id": self.external_id,
            "session_name": self.session_name,
        }
        return AwsConfig.model_validate({k: v for k, v in raw.items() if v is not None})


AWS_FIELDS = {"profile": "iam_profile"}  # the chokepoint's field name -> ours
IAM_ONLY = (
    "cluster_id",
    "iam_profile",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "role_arn",
    "external_id",
    "session_name",
)


def iam_problems(config: Any, method: str) -> ValidationError | None:
    """The first problem of the IAM fields for ``method``, located at its field (no input echoed)."""
    title = type(config).__name__
    if method not in IAM_METHODS:
        for name in IAM_ONLY:
            if getattr(config, name) is not None:
                return located_error(
                    title, (name,), f"only applies to method iam or iam_role (method is {method})"
                )
        return None
    if config.password is not None:
        return located_error(title, ("password",), f"method {method} logs in with IAM: leave password unset")
    if not config.cluster_id:
        return located_error(
            title, ("cluster_id",), f"method {method} needs the cluster's identifier", "missing"
        )
    if not config.region:
        return located_error(title, ("region",), f"method {method} needs the cluster's AWS region", "missing")
    if method == "iam" and not config.user:
        return located_error(title, ("user",), "method iam needs the database user", "missing")
    try:
        aws_url(config.aws_endpoint)
        config.aws_config()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "config"
        return located_error(title, (AWS_FIELDS.get(field, field),), error["msg"])
    except ValueError as exc:
        return located_error(title, ("aws_endpoint",), str(exc))
    return None


def _keys_in_profile(config: Any) -> bool:
    """Static keys dbt-redshift can carry itself (it has no key for a session token)."""
    return config.access_key_id is not None and config.session_token is None and config.role_arn is None


def iam_profile_keys(config: Any, compute_name: str) -> dict[str, Any]:
    """The dbt-redshift keys of ``method: iam`` / ``iam_role`` (no secret in clear)."""
    keys: dict[str, Any] = {
        "cluster_id": config.cluster_id,
        "region": config.region,
        "iam_profile": config.iam_profile if config.role_arn is None else None,
        "db_groups": list(config.db_groups) or None,
        "autocreate": config.autocreate or None,
    }
    if _keys_in_profile(config):
        keys["access_key_id"] = config.access_key_id
        keys["secret_access_key"] = secret_reference(compute_name, "secret_access_key")
    return {key: value for key, value in keys.items() if value is not None}


def iam_dbt_env(config: Any, compute_name: str, *, assume_role: bool) -> dict[str, str]:
    """Variables for this compute's dbt process only: the secret key the profile references, or
    the AWS_* keys when dbt-redshift cannot carry them (a session token, an assumed role).

    ``assume_role``: resolve a ``role_arn`` now (calls STS); False leaves a role to ``prepare_dbt_run``.
    """
    if config.method not in IAM_METHODS:
        return {}
    if _keys_in_profile(config):
        assert config.secret_access_key is not None
        return {
            secret_env_name(compute_name, "secret_access_key"): config.secret_access_key.get_secret_value()
        }
    if config.access_key_id is not None and config.role_arn is None:
        assert config.secret_access_key is not None and config.session_token is not None
        return aws_environment(
            config.access_key_id,
            config.secret_access_key.get_secret_value(),
            config.session_token.get_secret_value(),
        )
    if config.role_arn is not None and assume_role:
        keys = frozen_keys(aws_session(config.aws_config()))
        if keys is not None:
            return aws_environment(keys.access_key_id, keys.secret_access_key, keys.session_token)
    return {}


def aws_environment(access_key_id: str, secret_access_key: str, session_token: str | None) -> dict[str, str]:
    env = {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key}
    if session_token:
        env["AWS_SESSION_TOKEN"] = session_token
    return env


def temporary_login(config: Any) -> tuple[str, str]:
    """(database user, password) from the Redshift API, through the AWS credential chokepoint.

    ``iam``: ``GetClusterCredentials`` for ``user``; ``iam_role``:
    ``GetClusterCredentialsWithIAM`` (the role decides the user).
    """
    from botocore.config import Config

    aws = config.aws_config()
    client = aws_session(aws).client(
        "redshift",
        region_name=aws.aws_region,
        endpoint_url=config.aws_endpoint,
        config=Config(
            connect_timeout=config.connect_timeout,
            read_timeout=config.connect_timeout,
            retries={"total_max_attempts": 1},
        ),
    )
    if config.method == "iam_role":
        answer = client.get_cluster_credentials_with_iam(
            ClusterIdentifier=config.cluster_id, DbName=config.dbname, DurationSeconds=VALIDATION_DURATION_S
        )
    else:
        request: dict[str, Any] = {
            "DbUser": config.user,
            "ClusterIdentifier": config.cluster_id,
            "DbName": config.dbname,
            "AutoCreate": config.autocreate,
            "DurationSeconds": VALIDATION_DURATION_S,
        }
        if config.db_groups:
            request["DbGroups"] = list(config.db_groups)
        answer = client.get_cluster_credentials(**request)
    return str(answer["DbUser"]), str(answer["DbPassword"])
