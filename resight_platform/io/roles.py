"""The analyst role: reads ``gold`` and ``marts`` and nothing else.

Made by :func:`ensure_analyst_role` when the platform sets up the warehouse (``build_resources``,
right after the migrations), on the embedded server and on one given by ``RESIGHT_PG_URL`` alike.
Its name (``RESIGHT_ANALYST_ROLE``, default ``analyst``) and password (``RESIGHT_ANALYST_PASSWORD``)
are configuration, so this is Python rather than a migration script.

- **Login.** With a password the role can log in (the password is hashed by libpq with the
  server's ``password_encryption`` before it is sent, so no log line holds it). Without one a new
  role is created ``NOLOGIN`` (a group role: ``GRANT analyst TO alice`` gives a person its
  rights), and an existing role's login is left as it was, so a restart without the variable
  never locks out a role a DBA enabled. The embedded server (no TCP, trust on its own socket,
  where anyone who reaches the socket is already its superuser) gives the role ``LOGIN`` without
  a password (``login=True``), so ``resight sql`` runs as the analyst there with no setup.
- **Sessions as the analyst** (:func:`connect_as`) log in as the role itself: ``SET ROLE`` from
  the owner's session would not do, since a query could ``RESET ROLE``.
- **Rights**, made exact on every start: ``CONNECT`` on the database; ``USAGE`` and ``SELECT`` on
  every table in ``gold`` and ``marts``, and default privileges so that tables the platform
  creates there later (a new day partition of ``fact_sales``, a new mart) are readable too;
  ``CREATE`` on those schemas and any write on their tables revoked; everything on ``ops``
  revoked. Default privileges cover tables created by the role that runs this (the platform's).
- **Idempotent and safe under concurrency.** Roles are cluster-wide: two processes (or two
  databases of one server) may create or alter the same role at once. Creating is "if missing",
  a concurrent duplicate is caught, and a concurrent update of the role is retried. Grants in one
  database are made under the migrations' advisory lock.
- A platform user without ``CREATEROLE`` (an external server) cannot create or alter roles: that
  is logged as a warning and the platform starts anyway; a role a DBA made is still granted its
  rights.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from resight_platform.io.ops import MIGRATION_LOCK
from resight_platform.io.postgres import connect, quote_ident

__all__ = ["ANALYST_SCHEMAS", "PRIVATE_SCHEMAS", "AnalystRole", "connect_as", "ensure_analyst_role"]

log = logging.getLogger(__name__)

#: What the analyst reads: the business tables, and the pipeline's health views (views over the
#: ledger in ``ops``, 010_health.sql; they show the ledger's error text).
ANALYST_SCHEMAS = ("gold", "marts", "health")
#: The platform's own schemas the analyst never reads (revoked if someone granted them).
PRIVATE_SCHEMAS = ("ops",)
#: Write privileges revoked from the analyst on the tables it reads.
_WRITES = sql.SQL("INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER")
#: A concurrent session changing the same role: try again, after a random pause that doubles.
_ATTEMPTS = 12
_PAUSE = 0.01


@dataclass(frozen=True)
class AnalystRole:
    """The analyst role's name (a validated identifier), its password (never in ``repr``), and
    whether it may log in without one (the embedded server's trusted socket)."""

    name: str = "analyst"
    password: str | None = field(default=None, repr=False)
    login: bool = False

    def __post_init__(self) -> None:
        quote_ident(self.name)  # ValueError naming the bad name


def ensure_analyst_role(conn: psycopg.Connection[Any], role: AnalystRole) -> bool:
    """Create or update ``role`` and give it read access to ``gold`` and ``marts`` in the database
    of ``conn`` (after the migrations). ``False`` when the role does not exist and could not be
    created (logged)."""
    if not _ensure_role(conn, role):
        return False
    _grant(conn, role.name)
    return True


def connect_as(url: str, role: AnalystRole) -> psycopg.Connection[Any]:
    """A session on the server and database of ``url`` logged in as ``role`` (its own password,
    or none where the server trusts the connection): what the role may do, and nothing more."""
    return connect(url, user=role.name, password=role.password or "")


def _exists(cur: psycopg.Cursor[Any], name: str) -> bool:
    return cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def _ensure_role(conn: psycopg.Connection[Any], role: AnalystRole) -> bool:
    ident = quote_ident(role.name)
    for attempt in range(_ATTEMPTS):
        try:
            with conn.transaction(), conn.cursor() as cur:
                exists = _exists(cur, role.name)
                if role.password is None and role.login:
                    cur.execute(sql.SQL("{} ROLE {} LOGIN").format(sql.SQL("ALTER" if exists else "CREATE"), ident))
                    return True
                if role.password is None:
                    if not exists:
                        cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident))
                        log.info("created role %s NOLOGIN: set RESIGHT_ANALYST_PASSWORD to let it log in", role.name)
                    return True
                verifier = conn.pgconn.encrypt_password(role.password.encode(), role.name.encode()).decode()
                cur.execute(
                    sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                        sql.SQL("ALTER" if exists else "CREATE"), ident, sql.Literal(verifier)
                    )
                )
            return True
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            continue  # created by someone else meanwhile: now it exists
        except psycopg.errors.InternalError_ as exc:
            if "concurrently" not in str(exc):  # "tuple concurrently updated"
                raise
            time.sleep(random.uniform(0, _PAUSE * 2**attempt))
        except psycopg.errors.InsufficientPrivilege as exc:
            with conn.cursor() as cur:
                exists = _exists(cur, role.name)
            log.warning(
                "cannot create or alter role %s (%s): the platform user needs CREATEROLE;%s",
                role.name,
                str(exc).strip(),
                " granting the existing role its rights" if exists else " no analyst role",
            )
            return exists
    raise RuntimeError(f"role {role.name}: still updated concurrently after {_ATTEMPTS} attempts")


def _grant(conn: psycopg.Connection[Any], name: str) -> None:
    ident = quote_ident(name)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        database = cur.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), ident))
        present = {
            row[0]
            for row in cur.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", ([*ANALYST_SCHEMAS, *PRIVATE_SCHEMAS],)
            )
        }
        for schema in (s for s in ANALYST_SCHEMAS if s in present):
            name_ = quote_ident(schema)
            for statement in (
                "GRANT USAGE ON SCHEMA {schema} TO {role}",
                "REVOKE CREATE ON SCHEMA {schema} FROM {role}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
                "REVOKE {writes} ON ALL TABLES IN SCHEMA {schema} FROM {role}",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE {writes} ON TABLES FROM {role}",
            ):
                cur.execute(sql.SQL(statement).format(schema=name_, role=ident, writes=_WRITES))
        for schema in (s for s in PRIVATE_SCHEMAS if s in present):
            name_ = quote_ident(schema)
            cur.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(name_, ident))
            cur.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(name_, ident))
        public = cur.execute(
            "SELECT has_schema_privilege(%s, 'public', 'CREATE') FROM pg_namespace WHERE nspname = 'public'",
            (name,),
        ).fetchone()
    if public and public[0]:
        log.warning(
            "role %s can create tables in schema public (PUBLIC holds CREATE there):"
            " REVOKE CREATE ON SCHEMA public FROM PUBLIC as its owner",
            name,
        )
