"""Throw-away databases on the test Postgres server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
from psycopg import sql

from resight_platform.io.postgres import database_url

__all__ = ["temporary_database"]


def temporary_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    name = f"{prefix}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}".lower()
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield database_url(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
