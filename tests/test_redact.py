"""Secrets kept out of what the service shows: URL passwords (``redact.redact_url``)."""

from __future__ import annotations

import pytest

from scheduler_service.redact import redact_url


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql+psycopg://app:pw@db:5432/jobs", "postgresql+psycopg://app:***@db:5432/jobs"),
        ("redis://:pw@cache:6379/0?jobs_key=k", "redis://:***@cache:6379/0?jobs_key=k"),
        ("redis://:p@ss@cache/0", "redis://:***@cache/0"),
        ("mongodb://u:p%40ss@m1,m2:27018/db?rs=x", "mongodb://u:***@m1,m2:27018/db?rs=x"),
        ("zookeeper://u:pw@z1:2181,z2:2181/p", "zookeeper://u:***@z1:2181,z2:2181/p"),
        (
            "postgresql://db/x?sslmode=require&password=pw",
            "postgresql://db/x?sslmode=require&password=***",
        ),
        ("mongodb://user@m1/db", "mongodb://user@m1/db"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite:////var/lib/jobs.db", "sqlite:////var/lib/jobs.db"),
        ("memory://", "memory://"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
