"""Which outside service an exception says is down: the warehouse (Postgres, psycopg 3), Dagster's
instance storage (Postgres through SQLAlchemy and psycopg 2) or the object store (S3 through
botocore). One sentence for people, naming the service and its URL with the password masked; the
full trace belongs in a log, not on the terminal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from resight_platform.redact import redact, redact_text
from resight_platform.settings import Settings

__all__ = ["ErrorTrace", "ServiceDown", "service_down", "service_down_in_traces"]


@dataclass(frozen=True)
class ServiceDown:
    """A service that failed: its name, where it is (redacted), and the first line of the error."""

    service: str
    where: str
    reason: str

    def sentence(self) -> str:
        return f"{self.service} at {self.where} cannot be reached or went away: {self.reason}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost first (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(exc: BaseException) -> str:
    return _reason(str(exc), type(exc).__name__)


def _reason(text: str, name: str) -> str:
    """An error's first line, prefixes that say nothing removed, URLs redacted."""
    text = text.strip()
    line = text.splitlines()[0].strip() if text else name
    return redact_text(line.removeprefix("(psycopg2.OperationalError) ").removeprefix("connection failed: "))


def _kind(exc: BaseException) -> str | None:
    """``warehouse``, ``dagster`` or ``s3`` when ``exc`` is a lost or refused connection to one."""
    module = type(exc).__module__
    if module.startswith("psycopg.") or module == "psycopg":
        import psycopg

        return "warehouse" if isinstance(exc, psycopg.OperationalError) else None
    if module.startswith(("sqlalchemy", "psycopg2")):
        import psycopg2
        import sqlalchemy.exc

        return "dagster" if isinstance(exc, sqlalchemy.exc.OperationalError | psycopg2.OperationalError) else None
    if module.startswith("botocore"):
        from botocore import exceptions

        if isinstance(exc, exceptions.ConnectionError | exceptions.HTTPClientError):
            return "s3"
        if isinstance(exc, exceptions.ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return "s3" if status >= 500 else None
    return None


def _describe(kind: str, reason: str, settings: Settings) -> ServiceDown:
    warehouse = redact(settings.pg_url) if settings.pg_url else f"the embedded server in {settings.pg_data_dir}"
    if kind == "warehouse":
        return ServiceDown("the warehouse (Postgres, RESIGHT_PG_URL)", warehouse, reason)
    if kind == "dagster":
        if settings.dagster_pg_url:
            service = "Dagster's instance storage (Postgres, RESIGHT_DAGSTER_PG_URL)"
            return ServiceDown(service, redact(settings.dagster_pg_url), reason)
        # No storage of its own: Dagster's is the `dagster` database of the warehouse's server.
        service = "the warehouse's Postgres server (RESIGHT_PG_URL; Dagster's storage is its `dagster` database)"
        return ServiceDown(service, warehouse, reason)
    where = redact(settings.aws_endpoint_url) if settings.aws_endpoint_url else "AWS S3"
    return ServiceDown("the object store (S3, AWS_ENDPOINT_URL)", where, reason)


def service_down(exc: BaseException, settings: Settings) -> ServiceDown | None:
    """The service ``exc`` (or an exception it was raised from) says is down; ``None`` when it is
    not about an outside service (a bug or bad input: let it be raised as it is)."""
    for error in _chain(exc):
        kind = _kind(error)
        if kind is not None:
            return _describe(kind, _first_line(error), settings)
    return None


#: Exception classes of botocore that say the endpoint cannot be reached or dropped the connection.
_S3_CONNECTION_ERRORS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionError",
        "HTTPClientError",
    }
)


@dataclass(frozen=True)
class ErrorTrace:
    """An exception as a run's event log keeps it (Dagster's ``SerializableErrorInfo``, without
    Dagster): its class name, message and the text of its stack, then what it was raised from."""

    cls_name: str
    message: str
    stack: str
    parent: ErrorTrace | None = None

    def chain(self) -> Iterator[ErrorTrace]:
        current: ErrorTrace | None = self
        while current is not None:
            yield current
            current = current.parent


def _trace_kind(trace: ErrorTrace) -> str | None:
    """``_kind`` for an exception known only by its class name and stack: psycopg 3 is the
    warehouse's driver, psycopg 2 under SQLAlchemy Dagster's, botocore the object store's."""
    if trace.cls_name == "OperationalError":
        if "/psycopg/" in trace.stack:
            return "warehouse"
        if "/psycopg2/" in trace.stack or "/sqlalchemy/" in trace.stack:
            return "dagster"
    if trace.cls_name in _S3_CONNECTION_ERRORS and "/botocore/" in trace.stack:
        return "s3"
    return None


def service_down_in_traces(traces: Iterable[ErrorTrace], settings: Settings) -> ServiceDown | None:
    """The service the errors of a failed run (a step's, from its event log) say went away."""
    for trace in traces:
        for error in trace.chain():
            kind = _trace_kind(error)
            if kind is not None:
                text = error.message.strip()
                line = text.splitlines()[0].strip() if text else error.cls_name
                reason = redact_text(
                    line.removeprefix("(psycopg2.OperationalError) ").removeprefix("connection failed: ")
                )
                return _describe(kind, reason, settings)
    return None
