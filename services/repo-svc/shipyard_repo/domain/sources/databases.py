"""Database sources, used in place by runs: Amazon Redshift, and MySQL, MSSQL or Oracle reached
directly or through an ODBC/JDBC DSN; DSNs never hold a password, and a run's SQL config names
the credential only."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import ClassVar

from shipyard.kit.errors import InvalidArgument

from ..names import check_text
from .common import check_credential, check_host, required, source_field
from .urls import check_web_url

CA_CERT_MAX = 65536
DSN_MAX = 4096
SQL_PROVIDERS = ("mysql", "mssql", "oracle")
SQL_CONNECTIONS = ("direct", "odbc", "jdbc")
SQL_DEFAULT_PORTS = {"mysql": 3306, "mssql": 1433, "oracle": 1521}
JDBC_PREFIXES = {"mysql": "jdbc:mysql:", "mssql": "jdbc:sqlserver:", "oracle": "jdbc:oracle:"}


@dataclass(frozen=True)
class RedshiftSource:
    """An Amazon Redshift database. ``database`` is required; its default only keeps field order.

    ``endpoint`` may be empty when an API server supplies it; ``ca_cert`` is a PEM CA certificate.
    """

    KIND: ClassVar[str] = "redshift"
    endpoint: str = ""
    database: str = ""
    credential: str = ""
    ca_cert: str = ""


@dataclass(frozen=True)
class SqlSource:
    """A MySQL, MSSQL or Oracle database, reached directly or through an ODBC/JDBC ``dsn``.

    ``port`` 0 means the provider's default port.
    """

    KIND: ClassVar[str] = "sql"
    provider: str
    host: str = ""
    port: int = 0
    database: str = ""
    credential: str = ""
    connection: str = "direct"
    dsn: str = ""


_REDSHIFT_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,126}")
_SQL_DATABASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_$#@.-]*")
_SQL_DATABASE_MAX = {"mysql": 64, "mssql": 128, "oracle": 128}
_DSN_PASSWORD = re.compile(r"(?i)(pwd|passwd|password)\s*=")
_DSN_PASSWORD_VALUE = re.compile(r"(?i)((?:pwd|passwd|password)\s*=\s*)(\{[^}]*\}|[^;&]*)")
_ORACLE_USER_PASSWORD = re.compile(r"^(jdbc:oracle:[a-z0-9]+:[^@/]*)/[^@]*@")
_DSN_USERINFO = re.compile(r"(//)[^/?#;@]*@")


def check_redshift(source: RedshiftSource, allow_private: bool) -> RedshiftSource:
    """A Redshift source checked: endpoint (if given), database, credential name and CA certificate."""
    if source.endpoint:
        check_web_url(
            source_field("redshift", "endpoint"),
            source.endpoint,
            allow_private,
            credential_field=source_field("redshift", "credential"),
            endpoint=True,
        )
    field = source_field("redshift", "database")
    required(field, source.database)
    if not _REDSHIFT_DATABASE.fullmatch(source.database):
        raise InvalidArgument(
            field, "must be 1 to 127 letters, digits, '_' or '$', starting with a letter or '_'"
        )
    check_credential(source_field("redshift", "credential"), source.credential)
    _check_ca_cert(source_field("redshift", "ca_cert"), source.ca_cert)
    return source


def _check_ca_cert(field: str, pem: str) -> None:
    if not pem:
        return
    check_text(field, pem, CA_CERT_MAX)
    if "PRIVATE KEY" in pem:
        raise InvalidArgument(field, "contains a private key; give only the CA certificate")
    if "-----BEGIN CERTIFICATE-----" not in pem or "-----END CERTIFICATE-----" not in pem:
        raise InvalidArgument(field, "must be a PEM certificate (-----BEGIN CERTIFICATE----- ...)")


def check_sql(source: SqlSource, allow_private: bool) -> SqlSource:
    """A SQL source checked; a direct connection gets its provider's default port when it has none."""
    if source.provider not in SQL_PROVIDERS:
        raise InvalidArgument(
            source_field("sql", "provider"),
            f"must be one of {', '.join(SQL_PROVIDERS)} (got {source.provider!r})",
        )
    if source.connection not in SQL_CONNECTIONS:
        raise InvalidArgument(
            source_field("sql", "connection"),
            f"must be one of {', '.join(SQL_CONNECTIONS)} (got {source.connection!r})",
        )
    check_credential(source_field("sql", "credential"), source.credential)
    if source.connection == "direct":
        return _check_sql_direct(source, allow_private)
    return _check_sql_dsn(source)


def _check_sql_direct(source: SqlSource, allow_private: bool) -> SqlSource:
    if source.dsn:
        raise InvalidArgument(source_field("sql", "dsn"), "is only for odbc and jdbc connections")
    check_host(source_field("sql", "host"), source.host, allow_private)
    port = source.port or SQL_DEFAULT_PORTS[source.provider]
    if not 1 <= port <= 65535:
        raise InvalidArgument(source_field("sql", "port"), f"must be between 1 and 65535 (got {port})")
    field = source_field("sql", "database")
    required(field, source.database)
    limit = _SQL_DATABASE_MAX[source.provider]
    if len(source.database) > limit:
        raise InvalidArgument(field, f"must be at most {limit} characters for {source.provider}")
    if not _SQL_DATABASE.fullmatch(source.database):
        raise InvalidArgument(
            field,
            "may contain only letters, digits and '_', '$', '#', '@', '.', '-', and "
            "must start with a letter, digit or '_'",
        )
    return replace(source, port=port)


def _check_sql_dsn(source: SqlSource) -> SqlSource:
    """An ODBC or JDBC connection. Shipyard never connects through it (only the run does), so the
    server it names is not address-checked, as the platform it models does not validate it."""
    for name, value in (("host", source.host), ("database", source.database), ("port", source.port)):
        if value:
            raise InvalidArgument(
                source_field("sql", name), f"must be empty with {source.connection}: the DSN names the server"
            )
    field = source_field("sql", "dsn")
    required(field, source.dsn)
    check_text(field, source.dsn, DSN_MAX, multiline=False)
    if _DSN_PASSWORD.search(source.dsn) or _ORACLE_USER_PASSWORD.match(source.dsn):
        raise InvalidArgument(
            field,
            "must not contain a password; store it as a credential and name it in "
            f"{source_field('sql', 'credential')}",
        )
    if source.connection == "jdbc":
        prefix = JDBC_PREFIXES[source.provider]
        if not source.dsn.startswith(prefix):
            raise InvalidArgument(field, f"a {source.provider} JDBC URL must start with {prefix!r}")
        if _DSN_USERINFO.search(source.dsn):
            raise InvalidArgument(field, "must not embed a user name or password; store them as a credential")
    return source


def redact_dsn(dsn: str) -> str:
    """``dsn`` with passwords and user information removed (for sources that were never checked)."""
    dsn = _DSN_PASSWORD_VALUE.sub(r"\1***", dsn)
    dsn = _ORACLE_USER_PASSWORD.sub(r"\1@", dsn)
    return _DSN_USERINFO.sub(r"\1", dsn)


def sql_config(source: SqlSource) -> dict[str, str | int]:
    """What a run gets as its SQL config file for a checked source: the connection details and the
    *name* of the credential, never its secret."""
    config: dict[str, str | int] = {"provider": source.provider, "connection": source.connection}
    if source.connection == "direct":
        config.update(
            host=source.host,
            port=source.port or SQL_DEFAULT_PORTS.get(source.provider, 0),
            database=source.database,
        )
    else:
        config["dsn"] = source.dsn
    config["credential"] = source.credential
    return config
