"""``resight doctor``: what an operator checks before trusting a deployment, each check a small
function returning a :class:`CheckResult` that says what it found and, when something is wrong,
what to do about it (the variable to set, the command to run, the grant to make).

Read-only: nothing is migrated, granted or started (the embedded Postgres is looked at only when
it already runs); the lake's probe writes one object under ``.doctor/`` and deletes it, and the
landing zone is only listed and read (a probe there would reach the landing sensor). Every
check runs in a thread of its own with a deadline, so a service that hangs costs its check, not
the report; every text passes through :func:`~resight_platform.redact.redact_text`, so a password
in a URL never reaches the output.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from resight_platform.redact import redact, redact_text

__all__ = [
    "DISTRIBUTION",
    "MIN_SERVER_VERSION",
    "RECOMMENDED_SERVER_VERSION",
    "CheckResult",
    "Status",
    "declared_objects",
    "diagnose",
    "run_checks",
]

Status = Literal["ok", "warn", "fail"]
#: The installed distribution whose requirements the versions are compared to.
DISTRIBUTION = "resight-platform"
#: Below this the DDL does not run: ``INCLUDE`` in an index (009), a primary key and indexes on
#: the partitioned ``gold.fact_sales`` (001, 008), ``ATTACH``/``DETACH PARTITION`` of a day.
MIN_SERVER_VERSION = 11
#: Below this PUBLIC may create objects in schema ``public`` unless 006 revoked it as the owner.
RECOMMENDED_SERVER_VERSION = 15
#: Seconds a connection attempt to Postgres may take.
CONNECT_TIMEOUT = 3
#: Seconds an HTTP probe (MLflow) may take.
HTTP_TIMEOUT = 3.0
#: Seconds a whole check may take before it is reported as timed out.
CHECK_TIMEOUT = 20.0
#: What starts the migrations: every entry point that opens the warehouse runs them
#: (``resources.prepare_warehouse`` → ``io.ops.migrate``, idempotent, then the analyst's grants).
MIGRATE_COMMAND = "resight sql --owner 'select 1'"
#: Versions checked against the platform's own requirements; optional ones may be absent.
_PACKAGES = (("dagster", False), ("polars", False), ("pandera", False), ("mlflow", False), ("pyspark", True))


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``fix`` says what to do when ``status`` is not ``ok``."""

    name: str
    status: Status
    finding: str
    fix: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "finding", redact_text(self.finding))
        if self.fix is not None:
            object.__setattr__(self, "fix", redact_text(self.fix))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Check = Callable[[], list[CheckResult]]


def _error(exc: BaseException) -> str:
    """An exception in one line, its URLs redacted (libpq and botocore quote what they reached)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {text}")


def run_checks(checks: Sequence[tuple[str, Check]], timeout: float = CHECK_TIMEOUT) -> list[CheckResult]:
    """Run ``checks`` side by side, each in a daemon thread with ``timeout`` seconds: an exception
    or a hang fails that check only (a hung thread is abandoned, never waited for at exit)."""
    outcomes: dict[str, list[CheckResult]] = {}

    def run(name: str, check: Check) -> None:
        try:
            outcomes[name] = check()
        except Exception as exc:
            outcomes[name] = [CheckResult(name, "fail", f"the check raised {_error(exc)}", "see the error above")]

    threads = [(name, threading.Thread(target=run, args=(name, check), daemon=True)) for name, check in checks]
    deadline = time.monotonic() + timeout
    for _, thread in threads:
        thread.start()
    results: list[CheckResult] = []
    for name, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if name in outcomes:
            results.extend(outcomes[name])
        else:
            results.append(
                CheckResult(name, "fail", f"no answer within {timeout:.0f}s", "check the service named above")
            )
    return results


# --- settings -----------------------------------------------------------------------------------


def check_settings() -> tuple[list[CheckResult], Any]:
    """``Settings.from_env()`` (its error verbatim) and which deployment it describes."""
    from resight_platform.settings import Settings

    try:
        settings = Settings.from_env()
    except Exception as exc:
        message = redact_text(" ".join(str(exc).split()))
        return [CheckResult("settings", "fail", f"the settings do not load: {message}", "fix the variable named")], None
    external = [
        name
        for name, value in (
            ("RESIGHT_PG_URL", settings.pg_url),
            ("RESIGHT_DAGSTER_PG_URL", settings.dagster_pg_url),
            ("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
            ("AWS_ENDPOINT_URL", settings.aws_endpoint_url),
        )
        if value
    ]
    s3 = [url for url in (settings.landing_url, settings.lake_url) if url.startswith("s3://")]
    if settings.embedded and not s3:
        kind = f"embedded default under {settings.home} (local Postgres, lake and MLflow store)"
    else:
        kind = "production: " + ", ".join([*external, f"{len(s3)} S3 store(s)"] if s3 else external) + " set"
    return [CheckResult("settings", "ok", f"{kind}; engine {settings.engine.name}")], settings


# --- Postgres -----------------------------------------------------------------------------------


def _psycopg_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg2://``, Dagster's) as libpq reads it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def _server_version(conn: Any) -> tuple[int, str]:
    number = int(conn.execute("show server_version_num").fetchone()[0])
    text = str(conn.execute("show server_version").fetchone()[0]).split()[0]
    return number // 10000, text


def _version_result(name: str, major: int, text: str, where: str) -> CheckResult:
    if major < MIN_SERVER_VERSION:
        return CheckResult(
            name,
            "fail",
            f"PostgreSQL {text} at {where}: the DDL needs {MIN_SERVER_VERSION}+ (INCLUDE indexes, keys and indexes"
            " on the partitioned gold.fact_sales, ATTACH/DETACH PARTITION)",
            f"upgrade the server to PostgreSQL {RECOMMENDED_SERVER_VERSION} or later",
        )
    if major < RECOMMENDED_SERVER_VERSION:
        return CheckResult(
            name,
            "warn",
            f"PostgreSQL {text} at {where}: before {RECOMMENDED_SERVER_VERSION} PUBLIC may create in schema public"
            " (migration 006 revokes it only as the schema's owner)",
            f"upgrade to PostgreSQL {RECOMMENDED_SERVER_VERSION}+, or REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        )
    return CheckResult(name, "ok", f"PostgreSQL {text} at {where}")


_COMMENT = re.compile(r"--[^\n]*")
_TABLE = re.compile(r"create\s+table\s+if\s+not\s+exists\s+([\w.]+)", re.IGNORECASE)
_SCHEMA = re.compile(r"create\s+schema\s+if\s+not\s+exists\s+(\w+)", re.IGNORECASE)
#: A view is checked like a table (``to_regclass`` finds both).
_VIEW = re.compile(r"create\s+(?:or\s+replace\s+)?view\s+([\w.]+)", re.IGNORECASE)
_INDEX = re.compile(
    r"create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?if\s+not\s+exists\s+(\w+)\s+on\s+(?:only\s+)?(\w+)\.",
    re.IGNORECASE,
)
_COLUMN = re.compile(r"alter\s+table\s+(?:only\s+)?([\w.]+)\s+add\s+column\s+if\s+not\s+exists\s+(\w+)", re.IGNORECASE)


#: A day's table being loaded before its swap (``io.postgres.DayPartitionLoad``), not yet a partition.
_STAGING = re.compile(r"_load_\d{8}$")
_CONSTRAINT = re.compile(r"add\s+constraint\s+(\w+)", re.IGNORECASE)
_DROPPED_CONSTRAINT = re.compile(r"drop\s+constraint\s+if\s+exists\s+(\w+)", re.IGNORECASE)


def declared_objects() -> dict[str, list[tuple[str, str]]]:
    """Per migration script (``io/sql/*.sql``), the objects it creates: ``("schema", name)``,
    ``("table", schema.table)`` (a view too), ``("index", schema.index)``, ``("column", schema.table.column)``,
    ``("constraint", name)`` (unless a later script drops it). The scripts are idempotent and
    applied on every start, with no table recording them, so a script counts as applied when
    everything it creates exists; one that only grants or revokes (006) has nothing to verify."""
    sql_dir = resources.files("resight_platform.io") / "sql"
    scripts = sorted((p for p in sql_dir.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    texts = [(script.name, _COMMENT.sub("", script.read_text(encoding="utf-8"))) for script in scripts]
    out: dict[str, list[tuple[str, str]]] = {}
    for at, (name, text) in enumerate(texts):
        later = {m.group(1).lower() for _, after in texts[at + 1 :] for m in _DROPPED_CONSTRAINT.finditer(after)}
        objects = [("schema", m.group(1).lower()) for m in _SCHEMA.finditer(text)]
        objects += [("table", m.group(1).lower()) for m in _TABLE.finditer(text)]
        objects += [("table", m.group(1).lower()) for m in _VIEW.finditer(text)]
        objects += [("index", f"{m.group(2)}.{m.group(1)}".lower()) for m in _INDEX.finditer(text)]
        objects += [("column", f"{m.group(1)}.{m.group(2)}".lower()) for m in _COLUMN.finditer(text)]
        objects += [("constraint", c) for m in _CONSTRAINT.finditer(text) if (c := m.group(1).lower()) not in later]
        out[name] = objects
    return out


def _exists(cur: Any, kind: str, name: str) -> bool:
    if kind == "schema":
        return cur.execute("select 1 from pg_namespace where nspname = %s", (name,)).fetchone() is not None
    if kind == "constraint":
        return cur.execute("select 1 from pg_constraint where conname = %s", (name,)).fetchone() is not None
    if kind in ("table", "index"):
        return cur.execute("select to_regclass(%s)", (name,)).fetchone()[0] is not None
    schema, table, column = name.split(".")
    query = "select 1 from information_schema.columns where table_schema = %s and table_name = %s and column_name = %s"
    return cur.execute(query, (schema, table, column)).fetchone() is not None


def check_migrations(cur: Any) -> CheckResult:
    """Every script's objects exist; tables in the platform's schemas that no script creates
    (partitions and the loader's staging tables aside) are named."""
    declared = declared_objects()
    missing: dict[str, list[str]] = {}
    for script, objects in declared.items():
        absent = [f"{kind} {name}" for kind, name in objects if not _exists(cur, kind, name)]
        if absent:
            missing[script] = absent
    known = {name for objects in declared.values() for kind, name in objects if kind == "table"}
    present = cur.execute(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('ops', 'gold', 'marts') and c.relkind in ('r', 'p') and not c.relispartition"
    ).fetchall()
    unknown = sorted(name for (name,) in present if name not in known and not _STAGING.search(name))
    checkable = [script for script, objects in declared.items() if objects]
    if missing:
        shown = "; ".join(f"{script}: {', '.join(absent[:3])}" for script, absent in missing.items())
        return CheckResult(
            "migrations",
            "fail",
            f"{len(missing)} of {len(checkable)} migration scripts not applied ({shown})",
            f"apply them: `{MIGRATE_COMMAND}` (every command that opens the warehouse runs io/sql/*.sql,"
            " idempotent), as a user that may create in gold, marts and ops",
        )
    if unknown:
        return CheckResult(
            "migrations",
            "warn",
            f"all {len(declared)} scripts applied; tables no migration creates: {', '.join(unknown[:10])}",
            "a newer platform version's tables (upgrade this install), or made by hand: drop them if unused",
        )
    return CheckResult(
        "migrations",
        "ok",
        f"all {len(declared)} scripts applied ({len(checkable)} verified by their objects;"
        f" {', '.join(sorted(set(declared) - set(checkable))) or 'none'} only grant or revoke)",
    )


def check_loader(cur: Any) -> CheckResult:
    """The platform's user may create in gold, marts and ops, COPY into ``gold.fact_sales`` and swap
    its day partitions (``ATTACH``/``DETACH`` need the table's owner)."""
    from resight_platform.io.roles import ANALYST_SCHEMAS, PRIVATE_SCHEMAS

    user = cur.execute("select current_user").fetchone()[0]
    problems: list[str] = []
    fixes: list[str] = []
    for schema in (*ANALYST_SCHEMAS, *PRIVATE_SCHEMAS):
        row = cur.execute(
            "select has_schema_privilege(current_user, oid, 'CREATE') from pg_namespace where nspname = %s", (schema,)
        ).fetchone()
        if row is None:
            problems.append(f"no schema {schema}")
        elif not row[0]:
            problems.append(f"cannot create in {schema}")
            fixes.append(f"GRANT CREATE ON SCHEMA {schema} TO {user}")
    row = cur.execute(
        "select has_table_privilege(current_user, c.oid, 'INSERT'), pg_has_role(current_user, c.relowner, 'USAGE')"
        " from pg_class c where c.oid = to_regclass('gold.fact_sales')"
    ).fetchone()
    if row is None:
        problems.append("no gold.fact_sales")
    else:
        if not row[0]:
            problems.append("cannot COPY into gold.fact_sales")
            fixes.append(f"GRANT INSERT ON gold.fact_sales TO {user}")
        if not row[1]:
            problems.append("does not own gold.fact_sales (a day's swap detaches and attaches its partitions)")
            fixes.append(f"ALTER TABLE gold.fact_sales OWNER TO {user}")
    if problems:
        fix = "; ".join(fixes) if fixes else f"apply the migrations: `{MIGRATE_COMMAND}`"
        return CheckResult("loader rights", "fail", f"user {user}: " + "; ".join(problems), fix)
    return CheckResult(
        "loader rights", "ok", f"user {user} creates in gold, marts and ops, COPYs into and owns gold.fact_sales"
    )


def check_analyst(cur: Any, role: str, embedded: bool) -> CheckResult:
    """The analyst role exists, reads every table of ``ANALYST_SCHEMAS`` and nothing of
    ``PRIVATE_SCHEMAS`` (``io/roles.py``'s own lists); whether it can log in is reported."""
    from resight_platform.io.roles import ANALYST_SCHEMAS, PRIVATE_SCHEMAS

    regrant = f"the platform grants it on every start: `{MIGRATE_COMMAND}` as a user with CREATEROLE"
    row = cur.execute("select rolcanlogin from pg_roles where rolname = %s", (role,)).fetchone()
    if row is None:
        return CheckResult(
            "analyst role", "fail", f"role {role} does not exist (RESIGHT_ANALYST_ROLE)", f"create it: {regrant}"
        )
    login = (
        "can log in"
        if row[0]
        else "cannot log in (NOLOGIN: a group role; set RESIGHT_ANALYST_PASSWORD and restart for `resight sql`)"
    )
    problems: list[str] = []
    for schema in ANALYST_SCHEMAS:
        unreadable = cur.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition"
            " and not has_table_privilege(%s, c.oid, 'SELECT') order by 1",
            (schema, role),
        ).fetchall()
        usage = cur.execute(
            "select has_schema_privilege(%s, oid, 'USAGE') from pg_namespace where nspname = %s", (role, schema)
        ).fetchone()
        if usage is not None and not usage[0]:
            problems.append(f"no USAGE on {schema}")
        if unreadable:
            problems.append(f"cannot read {schema}." + f", {schema}.".join(r[0] for r in unreadable[:5]))
    for schema in PRIVATE_SCHEMAS:
        usage = cur.execute(
            "select has_schema_privilege(%s, oid, 'USAGE') from pg_namespace where nspname = %s", (role, schema)
        ).fetchone()
        readable = cur.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm')"
            " and has_table_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE') order by 1",
            (schema, role),
        ).fetchall()
        if (usage is not None and usage[0]) or readable:
            granted = ", ".join(f"{schema}.{r[0]}" for r in readable[:5]) or f"USAGE on {schema}"
            problems.append(f"has rights on {schema} ({granted})")
    if problems:
        private = ", ".join(PRIVATE_SCHEMAS)
        return CheckResult(
            "analyst role",
            "fail",
            f"role {role} ({login}): " + "; ".join(problems),
            f"{regrant}; by hand: REVOKE ALL ON SCHEMA {private} FROM {role}; REVOKE ALL ON ALL TABLES IN SCHEMA"
            f" {private} FROM {role}; GRANT SELECT ON ALL TABLES IN SCHEMA {', '.join(ANALYST_SCHEMAS)} TO {role}",
        )
    status: Status = "ok" if row[0] or not embedded else "warn"
    return CheckResult(
        "analyst role",
        status,
        f"role {role} ({login}) reads {', '.join(ANALYST_SCHEMAS)}, nothing of {', '.join(PRIVATE_SCHEMAS)}",
        None if status == "ok" else regrant,
    )


def check_warehouse(settings: Any) -> list[CheckResult]:
    """The warehouse: reachable, its version, the migrations, the loader's and the analyst's rights."""
    import psycopg

    from resight_platform.io.postgres import connect, database_url, embedded_pg_server_url

    if settings.pg_url:
        url = settings.pg_url
    else:
        server = embedded_pg_server_url(settings.pg_data_dir)
        if server is None:
            return [
                CheckResult(
                    "warehouse",
                    "warn",
                    f"embedded Postgres under {settings.pg_data_dir} is not running (RESIGHT_PG_URL unset)",
                    "any command that needs it starts it (`resight run`, `resight dev`); set RESIGHT_PG_URL for"
                    " an external server",
                )
            ]
        url = database_url(server, "resight")
    where = redact(url)
    started = time.monotonic()
    try:
        conn = connect(url, connect_timeout=str(CONNECT_TIMEOUT))
    except psycopg.Error as exc:
        return [
            CheckResult(
                "warehouse",
                "fail",
                f"{where} unreachable after {time.monotonic() - started:.1f}s: {_error(exc)}",
                "start the server or fix RESIGHT_PG_URL (host, port, database, user, password)",
            )
        ]
    with conn, conn.cursor() as cur:
        major, text = _server_version(conn)
        results = [_version_result("warehouse", major, text, where)]
        results.append(check_migrations(cur))
        results.append(check_loader(cur))
        results.append(check_analyst(cur, settings.analyst_role, settings.embedded))
    return results


def check_dagster_storage(settings: Any) -> list[CheckResult]:
    """Dagster's instance storage (``RESIGHT_DAGSTER_PG_URL``): reachable, its version."""
    import psycopg

    from resight_platform.io.postgres import connect

    if not settings.dagster_pg_url:
        return [
            CheckResult(
                "dagster storage", "ok", "RESIGHT_DAGSTER_PG_URL unset: database dagster on the warehouse's server"
            )
        ]
    url = _psycopg_url(settings.dagster_pg_url)
    where = redact(settings.dagster_pg_url)
    started = time.monotonic()
    try:
        with connect(url, connect_timeout=str(CONNECT_TIMEOUT)) as conn:
            major, text = _server_version(conn)
    except psycopg.Error as exc:
        return [
            CheckResult(
                "dagster storage",
                "fail",
                f"{where} unreachable after {time.monotonic() - started:.1f}s: {_error(exc)}",
                "start the server or fix RESIGHT_DAGSTER_PG_URL (a postgresql+psycopg2:// URL)",
            )
        ]
    return [_version_result("dagster storage", major, text, where)]


# --- object stores ------------------------------------------------------------------------------


def check_store(name: str, variable: str, url: str, settings: Any, *, write: bool = True) -> list[CheckResult]:
    """``url`` through ``open_store``: list, then write a probe under ``.doctor/``, read it back and
    delete it. With ``write=False`` (the landing zone: the platform only reads it, and the landing
    sensor would take a probe there for a partner's file and dead-letter it) list and read only."""
    from resight_platform.io.storage import open_store

    s3 = url.startswith("s3://")
    if not s3:
        root = Path(url.removeprefix("file://"))
        if not root.exists():
            parent = next((p for p in root.parents if p.exists()), None)
            if parent is not None and parent.is_dir() and _writable(parent):
                found = f"{url}: not there yet, created on the first write ({parent} writable)"
                return [CheckResult(name, "ok", found)]
            return [
                CheckResult(
                    name,
                    "fail",
                    f"{url}: does not exist and {parent or 'no parent'} is not a writable directory",
                    f"create the directory or fix {variable}",
                )
            ]
    actions = (
        ("s3:ListBucket, s3:PutObject, s3:GetObject and s3:DeleteObject") if write else "s3:ListBucket, s3:GetObject"
    )
    step = "open"
    try:
        store = open_store(url, settings.aws_endpoint_url, max_attempts=2)
        step = "list"
        first = next(iter(store.list()), None)
        if not write:
            step = "read"
            if first is not None and not store.exists(first.key):
                raise OSError(f"{first.key} was listed but cannot be read")
            seen = f"read {first.key}" if first is not None else "empty"
            return [CheckResult(name, "ok", f"{url}: listed ({seen}); not written: the landing sensor watches it")]
        probe = f".doctor/probe-{uuid.uuid4().hex}"
        step = "write"
        payload = b"resight doctor probe"
        store.write_bytes(probe, payload)
        step = "read back"
        if store.read_bytes(probe) != payload:
            raise OSError("the probe read back differs from what was written")
        step = "delete"
        store.delete_prefix(probe)  # a local store's empty .doctor/ goes with it
        if store.exists(probe):
            raise OSError("the probe is still there after its delete")
    except Exception as exc:
        fix = (
            f"create the bucket or fix {variable} (and AWS_ENDPOINT_URL); the credentials must allow {actions} there"
            if s3
            else f"create the directory or fix {variable}; the platform's user must be able to {step} there"
        )
        return [CheckResult(name, "fail", f"{url}: cannot {step}: {_error(exc)}", fix)]
    return [CheckResult(name, "ok", f"{url}: listed, wrote, read back and deleted a probe under .doctor/")]


# --- MLflow -------------------------------------------------------------------------------------


def check_mlflow(settings: Any) -> list[CheckResult]:
    """The tracking URI: a server answers ``/health``; a local store's directory is writable."""
    uri = settings.tracking_uri
    shown = redact(uri)
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        parts = urlsplit(uri)
        health = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") + "/health"
        started = time.monotonic()
        try:
            with urllib.request.urlopen(health, timeout=HTTP_TIMEOUT) as response:
                body = response.read(64).decode("utf-8", "replace").strip()
        except (urllib.error.URLError, OSError) as exc:
            return [
                CheckResult(
                    "mlflow tracking",
                    "fail",
                    f"{shown} unreachable after {time.monotonic() - started:.1f}s: {_error(exc)}",
                    "start the MLflow tracking server or fix MLFLOW_TRACKING_URI",
                )
            ]
        return [CheckResult("mlflow tracking", "ok", f"tracking server {shown} answers /health ({body or 'empty'})")]
    if scheme in ("sqlite", "file", ""):
        path = Path(uri.removeprefix("sqlite:///").removeprefix("file://"))
        directory = path.parent if scheme == "sqlite" else path
        existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not _writable(existing):
            return [
                CheckResult(
                    "mlflow tracking",
                    "fail",
                    f"local store {shown}: {existing or directory} is not a writable directory",
                    "make RESIGHT_HOME writable, or set MLFLOW_TRACKING_URI to a server",
                )
            ]
        state = "exists" if path.exists() else "is created on the first training run"
        return [CheckResult("mlflow tracking", "ok", f"local store {shown} {state}")]
    return [
        CheckResult(
            "mlflow tracking",
            "warn",
            f"tracking URI {shown}: a {scheme} store is not probed",
            "check it with `mlflow experiments search` against the same URI",
        )
    ]


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


# --- versions -----------------------------------------------------------------------------------


def check_versions(spark_here: bool = False) -> list[CheckResult]:
    """Python and the main libraries against the installed distribution's own requirement
    specifiers (its metadata, not a copy of setup.py). pyspark is optional unless ``spark_here``
    (``RESIGHT_ENGINE=spark`` needs it, as the local engine or as the Spark Connect client)."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    try:
        meta = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return [
            CheckResult(
                "versions",
                "fail",
                f"the {DISTRIBUTION} distribution is not installed (imported from a checkout?)",
                "pip install -e . (or `make install`)",
            )
        ]
    results: list[CheckResult] = []
    python = ".".join(str(p) for p in sys.version_info[:3])
    wanted = SpecifierSet(meta["Requires-Python"] or "")
    results.append(
        CheckResult("python", "ok", f"Python {python} ({wanted})")
        if wanted.contains(python)
        else CheckResult("python", "fail", f"Python {python}, needs {wanted}", f"use a Python {wanted} interpreter")
    )
    requirements = [Requirement(text) for text in importlib.metadata.requires(DISTRIBUTION) or []]
    for package, optional in _PACKAGES:
        spec = next((r for r in requirements if r.name.lower() == package), None)
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            results.append(
                CheckResult(package, "ok", "not installed (optional: the spark extra)")
                if optional and not spark_here
                else CheckResult(package, "fail", "not installed", f"pip install '{spec or package}'")
            )
            continue
        if spec is None or spec.specifier.contains(installed, prereleases=True):
            results.append(CheckResult(package, "ok", f"{installed} ({spec.specifier if spec else 'any'})"))
        else:
            results.append(
                CheckResult(
                    package, "fail", f"{installed}, the platform needs {spec.specifier}", f"pip install '{spec}'"
                )
            )
    return results


def check_java(settings: Any) -> list[CheckResult]:
    """Java 17+ when Spark runs in this process (``RESIGHT_ENGINE=spark``, no Connect remote)."""
    if settings.engine.name != "spark" or settings.engine.spark_remote:
        return []
    java = shutil.which("java") or (
        str(Path(os.environ["JAVA_HOME"], "bin", "java")) if os.environ.get("JAVA_HOME") else None
    )
    fix = "install a JRE 17+ (e.g. openjdk-17-jre-headless) or set JAVA_HOME; or RESIGHT_SPARK_REMOTE"
    if java is None or not Path(java).exists():
        return [CheckResult("java", "fail", "RESIGHT_ENGINE=spark runs Spark here, and there is no java", fix)]
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [CheckResult("java", "fail", f"{java} -version: {_error(exc)}", fix)]
    match = re.search(r'version "(\d+)', done.stderr + done.stdout)
    major = int(match.group(1)) if match else 0
    if major < 17:
        return [CheckResult("java", "fail", f"{java}: version {major or 'unknown'}, Spark 4 needs 17+", fix)]
    return [CheckResult("java", "ok", f"{java}: Java {major}")]


# --- all of them --------------------------------------------------------------------------------


def diagnose(timeout: float = CHECK_TIMEOUT) -> list[CheckResult]:
    """Every check, in report order. Without settings only the settings' failure is reported (the
    others would check the wrong deployment)."""
    settings_results, settings = check_settings()
    if settings is None:
        return settings_results
    checks: list[tuple[str, Check]] = [
        ("warehouse", lambda: check_warehouse(settings)),
        ("dagster storage", lambda: check_dagster_storage(settings)),
        (
            "landing",
            lambda: check_store("landing", "RESIGHT_LANDING_URL", settings.landing_url, settings, write=False),
        ),
        ("lake", lambda: check_store("lake", "RESIGHT_LAKE_URL", settings.lake_url, settings)),
        ("mlflow tracking", lambda: check_mlflow(settings)),
        ("versions", lambda: check_versions(settings.engine.name == "spark")),
        ("java", lambda: check_java(settings)),
    ]
    return settings_results + run_checks(checks, timeout)
