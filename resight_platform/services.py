"""Which outside service an exception says is down: the warehouse (Postgres, psycopg 3), Dagster's
instance storage (Postgres through SQLAlchemy and psycopg 2) or the object store (S3 through
botocore). One sentence for people, naming the service and its URL with the password masked; the
full trace belongs in a log, not on the terminal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from resight_platform.redact import redact, redact_text
from resight_platform.settings import Settings

__all__ = ["ServiceDown", "service_down"]


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
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
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


def service_down(exc: BaseException, settings: Settings) -> ServiceDown | None:
    """The service ``exc`` (or an exception it was raised from) says is down; ``None`` when it is
    not about an outside service (a bug or bad input: let it be raised as it is)."""
    for error in _chain(exc):
        kind = _kind(error)
        if kind == "warehouse":
            where = redact(settings.pg_url) if settings.pg_url else f"the embedded server in {settings.pg_data_dir}"
            return ServiceDown("the warehouse (Postgres, RESIGHT_PG_URL)", where, _first_line(error))
        if kind == "dagster":
            where = (
                redact(settings.dagster_pg_url)
                if settings.dagster_pg_url
                else "the `dagster` database of the warehouse's server"
            )
            service = "Dagster's instance storage (Postgres, RESIGHT_DAGSTER_PG_URL)"
            return ServiceDown(service, where, _first_line(error))
        if kind == "s3":
            where = redact(settings.aws_endpoint_url) if settings.aws_endpoint_url else "AWS S3"
            return ServiceDown("the object store (S3, AWS_ENDPOINT_URL)", where, _first_line(error))
    return None
