"""The rules of Redshift and SQL sources, and a run's SQL config (domain/sources/databases.py)."""

from __future__ import annotations

import dataclasses

import pytest
from repo_source_checks import referenced, refused
from shipyard_repo.domain.sources import (
    RedshiftSource,
    SqlSource,
)
from shipyard_repo.domain.sources.databases import sql_config

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("source", [
    RedshiftSource(database="dev"),
    RedshiftSource(endpoint="https://examplecluster.abc123.us-west-2.redshift.amazonaws.com:5439",
                   database="dev", credential="redshift", ca_cert=CERT),
    RedshiftSource(endpoint="http://52.1.2.3:5439", database="_sales$2024"),
    RedshiftSource(database="d" * 127),
])
def test_good_redshift(source: RedshiftSource) -> None:
    assert referenced(source) == source


@pytest.mark.parametrize(("source", "field", "problem"), [
    (RedshiftSource(), "database", "must not be empty"),
    (RedshiftSource(database="1dev"), "database", "starting with a letter"),
    (RedshiftSource(database="dev-db"), "database", "letters, digits"),
    (RedshiftSource(database="d" * 128), "database", "1 to 127"),
    (RedshiftSource(endpoint="cluster.example.com:5439", database="dev"), "endpoint", "http:// or https://"),
    (RedshiftSource(endpoint="https://cluster.example.com:5439/dev", database="dev"), "endpoint",
     "only scheme, host"),
    (RedshiftSource(endpoint="https://u:p@cluster.example.com:5439", database="dev"), "endpoint",
     "must not embed a password"),
    (RedshiftSource(endpoint="https://10.0.0.8:5439", database="dev"), "endpoint.host", "private address"),
    (RedshiftSource(database="dev", credential="a b"), "credential", "letters"),
    (RedshiftSource(database="dev", ca_cert="not a cert"), "ca_cert", "PEM certificate"),
    (RedshiftSource(database="dev", ca_cert=CERT + "-----BEGIN PRIVATE KEY-----\n"), "ca_cert",
     "private key"),
    (RedshiftSource(database="dev", ca_cert=CERT + "\x00"), "ca_cert", "control characters"),
])
def test_bad_redshift(source: RedshiftSource, field: str, problem: str) -> None:
    err = refused(referenced, source)
    assert err.field == f"repo.source.redshift.{field}"
    assert problem in err.problem


@pytest.mark.parametrize(("source", "expected"), [
    (SqlSource("mysql", host="db.example.com", database="sales"),
     SqlSource("mysql", host="db.example.com", port=3306, database="sales")),
    (SqlSource("mssql", host="db.example.com", database="Sales-2024"),
     SqlSource("mssql", host="db.example.com", port=1433, database="Sales-2024")),
    (SqlSource("oracle", host="db.example.com", database="orclpdb1.example.com", credential="ora"),
     SqlSource("oracle", host="db.example.com", port=1521, database="orclpdb1.example.com",
               credential="ora")),
    (SqlSource("mysql", host="db.example.com", port=13306, database="sales"),
     SqlSource("mysql", host="db.example.com", port=13306, database="sales")),
    (SqlSource("mssql", connection="odbc", dsn="SalesDSN"),
     SqlSource("mssql", connection="odbc", dsn="SalesDSN")),
    (SqlSource("mysql", connection="odbc", dsn="Driver={MySQL ODBC 8.0};Server=db;Database=sales;UID=bob"),
     SqlSource("mysql", connection="odbc", dsn="Driver={MySQL ODBC 8.0};Server=db;Database=sales;UID=bob")),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db.example.com:3306/sales"),
     SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db.example.com:3306/sales")),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db:1433;databaseName=sales"),
     SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db:1433;databaseName=sales")),
    (SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:@//db:1521/orclpdb1", credential="ora"),
     SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:@//db:1521/orclpdb1", credential="ora")),
])
def test_good_sql(source: SqlSource, expected: SqlSource) -> None:
    assert referenced(source) == expected


def test_sql_on_a_private_host_needs_the_operator_flag() -> None:
    source = SqlSource("mysql", host="10.0.0.7", database="sales")
    assert refused(referenced, source).field == "repo.source.sql.host"
    assert referenced(source, allow_private=True) == dataclasses.replace(source, port=3306)


@pytest.mark.parametrize(("source", "field", "problem"), [
    (SqlSource("postgres", host="db.example.com", database="x"), "provider", "mysql, mssql, oracle"),
    (SqlSource("MySQL", host="db.example.com", database="x"), "provider", "mysql, mssql, oracle"),
    (SqlSource("mysql", host="db.example.com", database="x", connection="http"), "connection",
     "direct, odbc"),
    (SqlSource("mysql", database="x"), "host", "must not be empty"),
    (SqlSource("mysql", host="db.example.com:3306", database="x"), "host", "give the port in its own field"),
    (SqlSource("mysql", host="db.example.com"), "database", "must not be empty"),
    (SqlSource("mysql", host="db.example.com", database="a" * 65), "database", "at most 64"),
    (SqlSource("mssql", host="db.example.com", database="a" * 129), "database", "at most 128"),
    (SqlSource("mysql", host="db.example.com", database="x;drop"), "database", "may contain only"),
    (SqlSource("mysql", host="db.example.com", database="-x"), "database", "must start"),
    (SqlSource("mysql", host="db.example.com", database="x", port=70000), "port", "between 1 and 65535"),
    (SqlSource("mysql", host="db.example.com", database="x", port=-1), "port", "between 1 and 65535"),
    (SqlSource("mysql", host="db.example.com", database="x", dsn="MyDSN"), "dsn", "only for odbc and jdbc"),
    (SqlSource("mysql", host="db.example.com", database="x", credential="a:b"), "credential", "letters"),
    (SqlSource("mysql", connection="odbc"), "dsn", "must not be empty"),
    (SqlSource("mysql", connection="jdbc"), "dsn", "must not be empty"),
    (SqlSource("mysql", connection="odbc", dsn="D", host="db"), "host", "must be empty with odbc"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/x", database="x"), "database",
     "must be empty with jdbc"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/x", port=3306), "port", "must be empty"),
    (SqlSource("mysql", connection="odbc", dsn="Server=db;UID=bob;PWD=secret"), "dsn",
     "must not contain a password"),
    (SqlSource("mssql", connection="odbc", dsn="Server=db;Password={a;b}"), "dsn",
     "must not contain a password"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/x?user=bob&password=s"), "dsn",
     "must not contain a password"),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db;user=bob;password=s"), "dsn",
     "must not contain a password"),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db;trustStorePassword=s"), "dsn",
     "must not contain a password"),
    (SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:scott/tiger@db:1521:orcl"), "dsn",
     "must not contain a password"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://bob:s@db/x"), "dsn", "must not embed"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:sqlserver://db"), "dsn",
     "must start with 'jdbc:mysql:'"),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:mysql://db/x"), "dsn",
     "must start with 'jdbc:sqlserver:'"),
    (SqlSource("oracle", connection="jdbc", dsn="JDBC:ORACLE:thin:@db"), "dsn",
     "must start with 'jdbc:oracle:'"),
    (SqlSource("mysql", connection="jdbc", dsn="mysql://db/x"), "dsn", "must start with 'jdbc:mysql:'"),
    (SqlSource("mysql", connection="odbc", dsn="D\nSN"), "dsn", "control characters"),
])
def test_bad_sql(source: SqlSource, field: str, problem: str) -> None:
    err = refused(referenced, source)
    assert err.field == f"repo.source.sql.{field}"
    assert problem in err.problem


@pytest.mark.parametrize(("source", "config"), [
    pytest.param(SqlSource("mysql", host="db.example.com", database="sales", credential="sql-ro"),
                 {"provider": "mysql", "connection": "direct", "host": "db.example.com", "port": 3306,
                  "database": "sales", "credential": "sql-ro"}, id="mysql-direct"),
    pytest.param(SqlSource("mssql", host="db.example.com", database="sales"),
                 {"provider": "mssql", "connection": "direct", "host": "db.example.com", "port": 1433,
                  "database": "sales", "credential": ""}, id="mssql-direct"),
    pytest.param(SqlSource("oracle", host="db.example.com", port=1522, database="orcl", credential="ora"),
                 {"provider": "oracle", "connection": "direct", "host": "db.example.com", "port": 1522,
                  "database": "orcl", "credential": "ora"}, id="oracle-direct-port"),
    pytest.param(SqlSource("oracle", host="db.example.com", database="orcl"),
                 {"provider": "oracle", "connection": "direct", "host": "db.example.com", "port": 1521,
                  "database": "orcl", "credential": ""}, id="oracle-direct"),
    pytest.param(SqlSource("mysql", connection="odbc", dsn="SalesDSN", credential="sql-ro"),
                 {"provider": "mysql", "connection": "odbc", "dsn": "SalesDSN", "credential": "sql-ro"},
                 id="mysql-odbc"),
    pytest.param(SqlSource("mssql", connection="odbc", dsn="Driver={ODBC Driver 18};Server=db"),
                 {"provider": "mssql", "connection": "odbc", "dsn": "Driver={ODBC Driver 18};Server=db",
                  "credential": ""}, id="mssql-odbc"),
    pytest.param(SqlSource("oracle", connection="odbc", dsn="OracleDSN", credential="ora"),
                 {"provider": "oracle", "connection": "odbc", "dsn": "OracleDSN", "credential": "ora"},
                 id="oracle-odbc"),
    pytest.param(SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/sales"),
                 {"provider": "mysql", "connection": "jdbc", "dsn": "jdbc:mysql://db/sales",
                  "credential": ""}, id="mysql-jdbc"),
    pytest.param(SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db;databaseName=s",
                           credential="c"),
                 {"provider": "mssql", "connection": "jdbc", "dsn": "jdbc:sqlserver://db;databaseName=s",
                  "credential": "c"}, id="mssql-jdbc"),
    pytest.param(SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:@//db:1521/orcl"),
                 {"provider": "oracle", "connection": "jdbc", "dsn": "jdbc:oracle:thin:@//db:1521/orcl",
                  "credential": ""}, id="oracle-jdbc"),
])
def test_sql_config_has_the_connection_and_only_the_credential_name(source: SqlSource,
                                                                    config: dict[str, str | int]) -> None:
    assert sql_config(source) == config
    checked = referenced(source, allow_private=True)
    assert isinstance(checked, SqlSource)
    assert sql_config(checked) == config  # checking changes nothing in it
