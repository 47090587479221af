"""Environment → frozen Settings, read once when definitions, a sensor tick or the CLI start, never
at import. Every ``RESIGHT_*`` variable is read here and nowhere else."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path

from resight_platform.faults import parse as parse_failpoints
from resight_platform.io.storage import DEFAULT_S3_MAX_ATTEMPTS

__all__ = [
    "SECRET_VARIABLES",
    "AlertSettings",
    "EmrSettings",
    "EngineSettings",
    "HealthSettings",
    "PgSwapSettings",
    "RetentionSettings",
    "Settings",
    "StepRetrySettings",
    "WatchSettings",
    "parse_spark_conf",
]

DEFAULT_PARTITIONS_START = "2025-01-01"
#: Seconds between two listings of the registry by a running process (a change is seen within it).
DEFAULT_REGISTRY_RECHECK_SECONDS = 10.0

#: The variables that may hold a secret (a password in a URL, a key, a webhook's token), by the
#: setting they fill: resources name these variables to Dagster (``dg.EnvVar``) instead of their
#: values, and the secrets suite sets every one of them.
SECRET_VARIABLES = {
    "pg_url": "RESIGHT_PG_URL",
    "dagster_pg_url": "RESIGHT_DAGSTER_PG_URL",
    "mlflow_tracking_uri": "MLFLOW_TRACKING_URI",
    "analyst_password": "RESIGHT_ANALYST_PASSWORD",
    "webhook_url": "RESIGHT_ALERT_WEBHOOK_URL",
    "smtp_password": "RESIGHT_ALERT_SMTP_PASSWORD",
    # A Spark Connect URL may carry a bearer token (``sc://host:443/;token=…``).
    "spark_remote": "RESIGHT_SPARK_REMOTE",
}


@dataclass(frozen=True)
class StepRetrySettings:
    """Dagster's retries of a failed step (every asset's ``RetryPolicy``, ``defs/policies.py``):
    ``RESIGHT_STEP_RETRIES`` attempts after the first; Dagster's exponential backoff waits
    ``RESIGHT_STEP_RETRY_DELAY_S`` × (2^n − 1) seconds before the n-th, ± the delay (jitter). Read
    when the definitions are imported, by every process that builds them (code server, runs).

    The defaults (2 retries, 2 s: waits of 2 s and 6 s) cover a dropped connection or a brief S3
    error. A Postgres restart, a failover or an S3 outage of half a minute takes longer: 4 retries
    at 3 s wait 3 + 9 + 21 + 45 s, about 78 s in all (deploy/README.md, "Redeploying without
    downtime"). A deterministic bug costs every retry."""

    retries: int = 2
    delay_s: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StepRetrySettings:
        env = os.environ if env is None else env
        retries = int(env.get("RESIGHT_STEP_RETRIES") or cls.retries)
        delay = float(env.get("RESIGHT_STEP_RETRY_DELAY_S") or cls.delay_s)
        if retries < 0 or delay < 0:
            raise ValueError(f"RESIGHT_STEP_RETRIES and RESIGHT_STEP_RETRY_DELAY_S must be >= 0: {retries}, {delay}")
        return cls(retries=retries, delay_s=delay)


@dataclass(frozen=True)
class WatchSettings:
    """How much one landing-sensor tick lists, hashes and requests (``RESIGHT_WATCH_<FIELD>``,
    e.g. ``RESIGHT_WATCH_HOT_DAYS=3``; durations in seconds).

    ``max_pending_runs`` (1): the sensor requests no run while that many of its runs wait in the run
    queue (queued or not started). Files that arrive meanwhile wait in the landing zone and go together
    in the next run, once the waiting one has a slot: one fuller run instead of a queued run each
    (at a file every 2 s, 16 let the queue grow and runs wait 20 s for a slot; bench/RESULTS.md).

    ``max_partitions_per_run`` (500): the most date × source partitions one landing run writes (a run
    names its set of partitions; more files wait for the next run). ``merge_gap_bytes`` is what a
    run is worth in re-read bytes to ``resight run`` / ``resight demo``, whose range runs span every
    partition between their ends (``pipeline.plan_runs``)."""

    hot_days: int = 7
    sweep_pages: int = 5
    page_size: int = 1000
    list_workers: int = 16
    hash_budget_bytes: int = 256 << 20
    max_runs_per_tick: int = 8
    max_partitions_per_run: int = 500
    merge_gap_bytes: int = 64 << 20
    max_pending_runs: int = 1
    max_dead_letter_per_run: int = 1000
    orphan_after: timedelta = timedelta(minutes=2)
    #: The event path (``RESIGHT_LANDING_QUEUE_URL``, ``io/events.py``): at most this many
    #: notifications received per tick (ten per SQS request) ...
    events_per_tick: int = 1000
    #: ... the long-poll wait of a tick's first receive, in seconds ...
    events_wait_seconds: int = 1
    #: ... how long a received notification stays hidden before SQS hands it out again, if the
    #: tick that received it never deleted it (a daemon stopped mid-tick) ...
    events_visibility_timeout: int = 300
    #: ... the most files of the waiting list and of recently queued rows read back per tick ...
    backlog_per_tick: int = 5000
    #: ... and how often the whole landing zone is swept for what the events missed (a sweep then
    #: takes ``sweep_pages`` pages a tick until it is through). The listing path sweeps on.
    sweep_interval: timedelta = timedelta(hours=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WatchSettings:
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = env.get(f"RESIGHT_WATCH_{spec.name.upper()}")
            if raw is None:
                continue
            values[spec.name] = timedelta(seconds=float(raw)) if isinstance(spec.default, timedelta) else int(raw)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PgSwapSettings:
    """How a load swaps its days into a date-partitioned warehouse table at the end of its
    transaction (``io/postgres.PartitionSwap``; ``docs/architecture.md``, "Storage"): each attempt
    waits at most ``lock_timeout_ms`` for a lock (``RESIGHT_PG_LOCK_TIMEOUT_MS``; readers queued
    behind the waiting swap wait no longer), then gives way for a pause that starts at
    ``backoff_ms`` and doubles up to ``backoff_max_ms`` (``RESIGHT_PG_SWAP_BACKOFF_MS``,
    ``RESIGHT_PG_SWAP_BACKOFF_MAX_MS``); after ``attempts`` attempts (``RESIGHT_PG_SWAP_ATTEMPTS``)
    the load fails with ``SwapBlocked`` naming the sessions that hold the lock, and rolls back."""

    lock_timeout_ms: int = 1000
    attempts: int = 30
    backoff_ms: int = 250
    backoff_max_ms: int = 5000

    def __post_init__(self) -> None:
        if (
            self.lock_timeout_ms < 1
            or self.attempts < 1
            or self.backoff_ms < 0
            or self.backoff_max_ms < self.backoff_ms
        ):
            raise ValueError(
                "RESIGHT_PG_LOCK_TIMEOUT_MS and RESIGHT_PG_SWAP_ATTEMPTS must be at least 1, and"
                " 0 <= RESIGHT_PG_SWAP_BACKOFF_MS <= RESIGHT_PG_SWAP_BACKOFF_MAX_MS"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PgSwapSettings:
        def get(name: str, default: int) -> int:
            return int(env.get(name) or default)

        return cls(
            lock_timeout_ms=get("RESIGHT_PG_LOCK_TIMEOUT_MS", cls.lock_timeout_ms),
            attempts=get("RESIGHT_PG_SWAP_ATTEMPTS", cls.attempts),
            backoff_ms=get("RESIGHT_PG_SWAP_BACKOFF_MS", cls.backoff_ms),
            backoff_max_ms=get("RESIGHT_PG_SWAP_BACKOFF_MAX_MS", cls.backoff_max_ms),
        )


@dataclass(frozen=True)
class HealthSettings:
    """What ``resight health`` and ``resight metrics`` call a problem, and how much they show
    (docs/operations.md): ``RESIGHT_HEALTH_WINDOW_HOURS`` (24: the recent files, dead letters, runs
    and check evaluations looked at), ``RESIGHT_HEALTH_MAX_LAG_MINUTES`` (60: a file's arrival to
    its silver load, or its wait so far), ``RESIGHT_HEALTH_MAX_QUEUED_MINUTES`` (30: a run queued
    longer), ``RESIGHT_METRICS_TOP_PROVIDERS`` (10: providers with series of their own)."""

    window: timedelta = timedelta(hours=24)
    max_lag: timedelta = timedelta(minutes=60)
    max_queued: timedelta = timedelta(minutes=30)
    top_providers: int = 10

    def __post_init__(self) -> None:
        for name in ("window", "max_lag", "max_queued"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"health setting {name} must be more than 0")
        if self.top_providers < 0:
            raise ValueError("RESIGHT_METRICS_TOP_PROVIDERS must be 0 or more")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HealthSettings:
        def number(name: str) -> float | None:
            raw = (env.get(name) or "").strip()
            return float(raw) if raw else None

        window, lag, queued = (
            number("RESIGHT_HEALTH_WINDOW_HOURS"),
            number("RESIGHT_HEALTH_MAX_LAG_MINUTES"),
            number("RESIGHT_HEALTH_MAX_QUEUED_MINUTES"),
        )
        top = (env.get("RESIGHT_METRICS_TOP_PROVIDERS") or "").strip()
        return cls(
            window=timedelta(hours=window) if window is not None else cls.window,
            max_lag=timedelta(minutes=lag) if lag is not None else cls.max_lag,
            max_queued=timedelta(minutes=queued) if queued is not None else cls.max_queued,
            top_providers=int(top) if top else cls.top_providers,
        )


#: The engines a run may choose (``resight_platform.engines.ENGINES``; not imported from there so that
#: settings stay free of the engines' imports).
_ENGINES = ("polars", "spark")
#: Spark settings that have settings of their own (``RESIGHT_SPARK_MASTER``, ``RESIGHT_SPARK_REMOTE``):
#: refused in ``RESIGHT_SPARK_CONF``, so one value cannot silently win over the other.
_OWN_SPARK_KEYS = ("spark.master", "spark.remote")
_SPARK_KEY = re.compile(r"spark\.[A-Za-z0-9_.\-]+")


def parse_spark_conf(text: str) -> tuple[tuple[str, str], ...]:
    """``RESIGHT_SPARK_CONF`` as ``((key, value), ...)`` in the order given.

    Either ``key=value`` items separated by commas
    (``spark.executor.memory=8g,spark.sql.shuffle.partitions=400``) or, for a value that holds a
    comma (``spark.jars``), a JSON object of strings. Each key must be a Spark setting
    (``spark.…``; Spark ignores anything else with a warning only) and appear once; the master and
    the Connect URL have their own variables. A bad item is named in the error.
    """
    text = text.strip()
    if not text:
        return ()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"RESIGHT_SPARK_CONF is not a JSON object: {error}") from error
        if not isinstance(loaded, dict):
            raise ValueError("RESIGHT_SPARK_CONF is not a JSON object")
        items = [(str(key), value) for key, value in loaded.items()]
        for key, value in items:
            if not isinstance(value, str | int | float):
                raise ValueError(f"RESIGHT_SPARK_CONF item {key!r}: the value must be a string or a number")
        pairs = [(key, str(value).lower() if isinstance(value, bool) else str(value)) for key, value in items]
    else:
        pairs = []
        for item in text.split(","):
            key, equals, value = item.partition("=")
            if not equals:
                raise ValueError(f"RESIGHT_SPARK_CONF item {item.strip()!r} is not key=value")
            pairs.append((key.strip(), value.strip()))
    seen: set[str] = set()
    for key, value in pairs:
        if not _SPARK_KEY.fullmatch(key):
            raise ValueError(f"RESIGHT_SPARK_CONF item {key!r}: not a Spark setting (spark.…)")
        if key in _OWN_SPARK_KEYS:
            raise ValueError(
                f"RESIGHT_SPARK_CONF item {key!r}: set it with RESIGHT_SPARK_{key.split('.')[1].upper()} instead"
            )
        if not value:
            raise ValueError(f"RESIGHT_SPARK_CONF item {key!r} has no value")
        if key in seen:
            raise ValueError(f"RESIGHT_SPARK_CONF item {key!r} is given twice")
        seen.add(key)
    return tuple(pairs)


@dataclass(frozen=True)
class EngineSettings:
    """Where silver, gold, the marts and the ML features run by default (a run's ``resight/engine`` tag wins):
    ``RESIGHT_ENGINE`` (``polars``, in-process, or ``spark``), and Spark's session:
    ``RESIGHT_SPARK_MASTER`` (``local[*]``: a session in this process), ``RESIGHT_SPARK_REMOTE``
    (a Spark Connect server, ``sc://host:port``; wins over the master) and ``RESIGHT_SPARK_CONF``
    (the deployment's own settings, :func:`parse_spark_conf`)."""

    name: str = "polars"
    spark_master: str = "local[*]"
    #: May carry a token (``sc://host:443/;token=…``): kept out of the repr.
    spark_remote: str | None = field(default=None, repr=False)
    spark_conf: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.name not in _ENGINES:
            raise ValueError(f"RESIGHT_ENGINE {self.name!r} is not an engine; engines are {', '.join(_ENGINES)}")
        if self.spark_remote is not None and not re.fullmatch(
            r"sc://[^/\s]+", self.spark_remote.split(";")[0].rstrip("/")
        ):
            shown = self.spark_remote.split(";")[0]  # never the parameters: they may hold a token
            raise ValueError(f"RESIGHT_SPARK_REMOTE {shown!r} is not a Spark Connect URL (sc://host:port)")
        if not self.spark_master.strip():
            raise ValueError("RESIGHT_SPARK_MASTER is empty")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EngineSettings:
        return cls(
            name=(env.get("RESIGHT_ENGINE") or cls.name).strip().lower(),
            spark_master=(env.get("RESIGHT_SPARK_MASTER") or cls.spark_master).strip(),
            spark_remote=(env.get("RESIGHT_SPARK_REMOTE") or "").strip() or None,
            spark_conf=parse_spark_conf(env.get("RESIGHT_SPARK_CONF") or ""),
        )


#: An IAM role's ARN (``arn:aws:iam::123456789012:role/name``, any partition, paths allowed).
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+")
#: What ``RESIGHT_EMR_*`` must all be given together (the rest have defaults).
_EMR_REQUIRED = {
    "application_id": "RESIGHT_EMR_SERVERLESS_APPLICATION_ID",
    "execution_role_arn": "RESIGHT_EMR_EXECUTION_ROLE_ARN",
    "entry_point": "RESIGHT_EMR_ENTRY_POINT",
    "archive": "RESIGHT_EMR_ARCHIVE",
}


@dataclass(frozen=True)
class EmrSettings:
    """Silver on EMR Serverless through Dagster Pipes (``docs/engines.md``, "Where Spark runs"):
    the application (``RESIGHT_EMR_SERVERLESS_APPLICATION_ID``), the role its job runs as
    (``RESIGHT_EMR_EXECUTION_ROLE_ARN``), the entry script (``RESIGHT_EMR_ENTRY_POINT``, an
    ``s3://…/emr_entry.py``) and the packed virtual environment with the platform installed
    (``RESIGHT_EMR_ARCHIVE``, an ``s3://…tar.gz``, unpacked on the cluster as ``environment``).
    The job's driver writes its Pipes messages to stdout, which EMR Serverless sends to CloudWatch
    Logs: ``RESIGHT_EMR_LOG_GROUP`` (default ``/aws/emr-serverless``), read back by Dagster.
    Unset (no application id): the EMR job is not in the definitions."""

    application_id: str | None = None
    execution_role_arn: str | None = None
    entry_point: str | None = None
    archive: str | None = None
    log_group: str = "/aws/emr-serverless"
    #: Seconds between two polls of the job run's state (``RESIGHT_EMR_POLL_SECONDS``).
    poll_seconds: float = 30.0
    #: EMR Serverless cancels a job run after this long (``RESIGHT_EMR_TIMEOUT_MINUTES``; EMR's
    #: own minimum is 5).
    timeout_minutes: int = 720

    def __post_init__(self) -> None:
        given = {name: getattr(self, name) for name in _EMR_REQUIRED}
        if not any(given.values()):
            return
        missing = [_EMR_REQUIRED[name] for name, value in given.items() if not value]
        if missing:
            raise ValueError(f"EMR Serverless is half configured: set {', '.join(missing)} too (docs/engines.md)")
        if not re.fullmatch(r"[0-9a-z]{16}", str(self.application_id)):
            raise ValueError(
                f"RESIGHT_EMR_SERVERLESS_APPLICATION_ID {self.application_id!r} is not an application id"
                " (16 lower-case letters and digits)"
            )
        if not _ROLE_ARN.fullmatch(str(self.execution_role_arn)):
            raise ValueError(
                f"RESIGHT_EMR_EXECUTION_ROLE_ARN {self.execution_role_arn!r} is not an IAM role ARN"
                " (arn:aws:iam::<account>:role/<name>)"
            )
        for variable, value, suffixes in (
            ("RESIGHT_EMR_ENTRY_POINT", str(self.entry_point), (".py",)),
            ("RESIGHT_EMR_ARCHIVE", str(self.archive), (".tar.gz", ".tgz", ".zip")),
        ):
            if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]+/\S+", value) or not value.endswith(suffixes):
                raise ValueError(
                    f"{variable} {value!r} is not an s3:// URI of a {' or '.join(suffixes)} file: the cluster reads it"
                )
        if not self.log_group.startswith("/") or any(c.isspace() for c in self.log_group):
            raise ValueError(f"RESIGHT_EMR_LOG_GROUP {self.log_group!r} is not a CloudWatch log group name (/…)")
        if self.poll_seconds <= 0:
            raise ValueError(f"RESIGHT_EMR_POLL_SECONDS {self.poll_seconds} must be more than 0")
        if self.timeout_minutes < 5:
            raise ValueError(f"RESIGHT_EMR_TIMEOUT_MINUTES {self.timeout_minutes} is under EMR's minimum of 5")

    @property
    def configured(self) -> bool:
        return self.application_id is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EmrSettings:
        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        return cls(
            **{name: get(variable) for name, variable in _EMR_REQUIRED.items()},
            log_group=get("RESIGHT_EMR_LOG_GROUP") or cls.log_group,
            poll_seconds=float(get("RESIGHT_EMR_POLL_SECONDS") or cls.poll_seconds),
            timeout_minutes=int(get("RESIGHT_EMR_TIMEOUT_MINUTES") or cls.timeout_minutes),
        )


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go (``RESIGHT_ALERT_*``; secrets from the environment only)."""

    webhook_url: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    #: A CA bundle to trust for the SMTP server's certificate besides the system's (a private
    #: relay, the tests' own CA): ``RESIGHT_ALERT_SMTP_CA_FILE``. Certificates are always verified.
    smtp_ca_file: Path | None = None
    email_from: str = "resight-alerts@localhost"
    email_to: tuple[str, ...] = ()
    ui_url: str = "http://localhost:3000"
    max_messages_per_hour: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings:
        def get(name: str) -> str | None:
            return env.get(f"RESIGHT_ALERT_{name}") or None

        return cls(
            webhook_url=get("WEBHOOK_URL"),
            smtp_host=get("SMTP_HOST"),
            smtp_port=int(get("SMTP_PORT") or 25),
            smtp_user=get("SMTP_USER"),
            smtp_password=get("SMTP_PASSWORD"),
            smtp_starttls=(get("SMTP_STARTTLS") or "").lower() in ("1", "true", "yes"),
            smtp_ca_file=Path(ca_file) if (ca_file := get("SMTP_CA_FILE")) else None,
            email_from=get("EMAIL_FROM") or cls.email_from,
            email_to=tuple(a.strip() for a in (get("EMAIL_TO") or "").split(",") if a.strip()),
            ui_url=(get("UI_URL") or env.get("RESIGHT_UI_URL") or cls.ui_url).rstrip("/"),
            max_messages_per_hour=int(get("MAX_PER_HOUR") or cls.max_messages_per_hour),
        )

    @property
    def sinks(self) -> list[str]:
        """The configured destinations: ``webhook`` and/or ``email``."""
        out = []
        if self.webhook_url:
            out.append("webhook")
        if self.smtp_host and self.email_to:
            out.append("email")
        return out


@dataclass(frozen=True)
class RetentionSettings:
    """How long each layer is kept, by business date (``RESIGHT_RETAIN_<LAYER>_DAYS``; 0 keeps a
    layer forever), when the retention job runs, and how compaction sizes a partition's row groups
    (``docs/retention.md``)."""

    landing_days: int = 90
    bronze_days: int = 90
    silver_days: int = 365
    #: Gold and the marts are the system of record: only 0 (kept forever) is accepted.
    gold_days: int = 0
    marts_days: int = 0
    #: Dead letters by the day they were dead-lettered (their folder), quarantined rows by business date.
    dead_letter_days: int = 180
    quarantine_days: int = 180
    #: When the retention job runs (``RESIGHT_RETENTION_SCHEDULE``, cron, UTC).
    schedule: str = "43 3 * * *"
    #: Rows per row group of a compacted partition file (``RESIGHT_COMPACT_ROW_GROUP_ROWS``).
    compact_row_group_rows: int = 500_000
    #: A partition file with more row groups than this, most of them small, is compacted
    #: (``RESIGHT_COMPACT_MIN_ROW_GROUPS``).
    compact_min_row_groups: int = 8

    def __post_init__(self) -> None:
        for name in ("landing_days", "bronze_days", "silver_days", "dead_letter_days", "quarantine_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"RESIGHT_RETAIN_{name.removesuffix('_days').upper()}_DAYS must be 0 (keep) or more")
        for name in ("gold_days", "marts_days"):
            if getattr(self, name) != 0:
                raise ValueError(
                    f"RESIGHT_RETAIN_{name.removesuffix('_days').upper()}_DAYS={getattr(self, name)}: gold and the"
                    " marts are kept (0); retention deletes landing, bronze, silver, quarantine and dead letters only"
                )
        if self.compact_row_group_rows < 1 or self.compact_min_row_groups < 1:
            raise ValueError("RESIGHT_COMPACT_ROW_GROUP_ROWS and RESIGHT_COMPACT_MIN_ROW_GROUPS must be 1 or more")
        if len(self.schedule.split()) != 5:
            raise ValueError(f"RESIGHT_RETENTION_SCHEDULE {self.schedule!r} is not a five-field cron expression")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetentionSettings:
        values: dict[str, object] = {}
        for spec in fields(cls):
            if spec.name.endswith("_days"):
                variable = f"RESIGHT_RETAIN_{spec.name.removesuffix('_days').upper()}_DAYS"
            elif spec.name == "schedule":
                variable = "RESIGHT_RETENTION_SCHEDULE"
            else:
                variable = f"RESIGHT_{spec.name.upper()}"
            raw = (env.get(variable) or "").strip()
            if raw:
                values[spec.name] = raw if spec.name == "schedule" else int(raw)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Settings:
    """Where everything lives. Local paths for the embedded default, URLs for production."""

    home: Path
    landing_url: str
    lake_url: str
    pg_url: str | None = field(repr=False)
    aws_endpoint_url: str | None
    partitions_start: str
    #: ``RESIGHT_REGISTRY_DIR``: a local directory, or a URL (``s3://bucket/prefix``) kept as text.
    registry_dir: Path | str | None
    #: ``MLFLOW_TRACKING_URI`` when set (an MLflow server); else a local store under ``home``.
    mlflow_tracking_uri: str | None = None
    #: The role that reads gold and marts (``RESIGHT_ANALYST_ROLE``) and its password
    #: (``RESIGHT_ANALYST_PASSWORD``; without one the role cannot log in): ``io/roles.py``.
    analyst_role: str = "analyst"
    analyst_password: str | None = field(default=None, repr=False)
    #: The Dagster instance's own storage (``RESIGHT_DAGSTER_PG_URL``, a ``postgresql+psycopg2://``
    #: URL); else the ``dagster`` database of the warehouse's server.
    dagster_pg_url: str | None = field(default=None, repr=False)
    #: The landing sensor's budgets (``RESIGHT_WATCH_*``).
    watch: WatchSettings = field(default_factory=WatchSettings)
    #: The SQS queue that carries the landing bucket's object-created notifications
    #: (``RESIGHT_LANDING_QUEUE_URL``; ``resight landing subscribe`` makes it): the landing sensor's
    #: hot path on S3. Unset: the sensor lists the landing zone on every tick.
    landing_queue_url: str | None = None
    #: Alert destinations (``RESIGHT_ALERT_*``).
    alerts: AlertSettings = field(default_factory=AlertSettings)
    #: The default engine of silver, gold, the marts and the ML features, and Spark's session (``RESIGHT_ENGINE``,
    #: ``RESIGHT_SPARK_*``).
    engine: EngineSettings = field(default_factory=EngineSettings)
    #: Silver on EMR Serverless through Pipes (``RESIGHT_EMR_*``); unconfigured by default.
    emr: EmrSettings = field(default_factory=EmrSettings)
    #: How long past its expected delivery window a source may be before it is stale
    #: (``RESIGHT_FRESHNESS_GRACE_HOURS``).
    freshness_grace: timedelta = timedelta(hours=2)
    #: What ``resight health`` and ``resight metrics`` call a problem (``RESIGHT_HEALTH_*``,
    #: ``RESIGHT_METRICS_TOP_PROVIDERS``).
    health: HealthSettings = field(default_factory=HealthSettings)
    #: How often a running process lists the registry for changes (``RESIGHT_REGISTRY_RECHECK_SECONDS``).
    registry_recheck_seconds: float = DEFAULT_REGISTRY_RECHECK_SECONDS
    #: Worker processes that run `resight run` / `resight demo`'s independent runs side by side
    #: (``RESIGHT_PIPELINE_WORKERS``; 1 runs everything in the command's own process).
    pipeline_workers: int = 1
    #: The longest record (line) a landed file may hold, in bytes (``RESIGHT_MAX_RECORD_BYTES``);
    #: a longer one dead-letters the file as ``record_too_long``.
    max_record_bytes: int = 1 << 20
    #: The most bytes a landed file may hold, decompressed (``RESIGHT_MAX_FILE_BYTES``); a larger
    #: one (a gzip bomb) dead-letters the file as ``too_large``.
    max_file_bytes: int = 4 << 30
    #: Where a landed file is copied while it is dead-lettered (``RESIGHT_SPOOL_DIR``; by default
    #: ``{home}/spool``); None: the system's temporary directory.
    spool_dir: Path | None = None
    #: Orphan ``*.resight-tmp`` part files in the lake older than this are removed by the
    #: housekeeping sweep (``RESIGHT_SWEEP_GRACE_HOURS``): a writer still running is never younger.
    sweep_grace: timedelta = timedelta(hours=6)
    #: The first business date a partner's sales may have when ``providers.csv`` gives it no
    #: ``history_start`` (``RESIGHT_HISTORY_FLOOR``, ``YYYY-MM-DD``): earlier ones are quarantined
    #: as ``before_history_start``.
    history_floor: date = date(2000, 1, 1)
    #: The closing job (``defs/closing.py``) judges the days from this many days before today up
    #: to yesterday (``RESIGHT_CLOSE_LOOKBACK_DAYS``); 0: the whole partition space, from
    #: ``partitions_start``. Either way a day is closed once and a second run closes nothing new.
    close_lookback_days: int = 0
    #: When the closing job runs, UTC (``RESIGHT_CLOSE_CRON``): after midnight, yesterday is judged.
    close_cron: str = "30 0 * * *"
    #: Fault injection for tests (``RESIGHT_FAILPOINTS``, :mod:`resight_platform.faults`): the armed
    #: points, ``(name, (hit that fires, action))``; none in production.
    failpoints: tuple[tuple[str, tuple[int, str]], ...] = ()
    #: Attempts of every S3 request, the first included (``RESIGHT_S3_MAX_ATTEMPTS``): botocore's
    #: ``standard`` retry mode retries 5xx answers, throttling (SlowDown) and dropped connections
    #: with jittered exponential backoff, and so does Polars' reader of the lake.
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    #: How a load's day swaps wait for, and give way to, readers of the warehouse (``RESIGHT_PG_LOCK_TIMEOUT_MS``,
    #: ``RESIGHT_PG_SWAP_*``).
    pg_swap: PgSwapSettings = field(default_factory=PgSwapSettings)
    #: Retention and compaction (``RESIGHT_RETAIN_*``, ``RESIGHT_RETENTION_SCHEDULE``, ``RESIGHT_COMPACT_*``).
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    #: Whether these settings were read from this process's environment (``from_env()`` without a
    #: mapping): only then can a secret be handed to Dagster by its variable's name.
    from_process_env: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.landing_queue_url and not self.landing_url.startswith("s3://"):
            raise ValueError(
                f"RESIGHT_LANDING_QUEUE_URL carries S3 notifications: the landing zone must be on S3"
                f" (RESIGHT_LANDING_URL=s3://…), not {self.landing_url!r}"
            )
        if self.emr.configured and not self.lake_url.startswith("s3://"):
            raise ValueError(
                f"EMR Serverless needs the lake on S3 (RESIGHT_LAKE_URL=s3://…): the cluster cannot read"
                f" {self.lake_url!r}"
            )
        if self.emr.configured and self.registry_dir is not None and not str(self.registry_dir).startswith("s3://"):
            raise ValueError(
                f"EMR Serverless needs the registry packaged or on S3 (RESIGHT_REGISTRY_DIR=s3://…): the cluster"
                f" cannot read {str(self.registry_dir)!r}"
            )

    def secret_variable(self, setting: str) -> str | None:
        """The environment variable that holds ``setting`` (a key of :data:`SECRET_VARIABLES`)
        when it came from this process's environment and still holds the same value there: what
        ``dg.EnvVar`` needs so that Dagster shows the name, never the value. ``None`` otherwise
        (the setting is unset, or came from a mapping, as in tests)."""
        name = SECRET_VARIABLES[setting]
        value = self.secret_value(setting)
        if not self.from_process_env or value is None or os.environ.get(name) != value:
            return None
        return name

    def secret_value(self, setting: str) -> str | None:
        """The value of ``setting`` (a key of :data:`SECRET_VARIABLES`), wherever it is kept."""
        for holder in (self, self.alerts, self.engine):
            if hasattr(holder, setting):
                value: str | None = getattr(holder, setting)
                return value
        raise KeyError(setting)

    @property
    def dead_letter_url(self) -> str:
        return f"{self.lake_url.rstrip('/')}/dead_letter"

    @property
    def pg_data_dir(self) -> Path:
        return self.home / "pg"

    @property
    def mlflow_dir(self) -> Path:
        """The local MLflow store: its SQLite database and the runs' artifacts."""
        return self.home / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """Where MLflow runs and registered models are tracked."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def embedded(self) -> bool:
        return self.pg_url is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        from_process_env = env is None
        env = os.environ if env is None else env
        home = Path(env.get("RESIGHT_HOME", ".resight")).expanduser().absolute()
        registry = env.get("RESIGHT_REGISTRY_DIR")
        return cls(
            home=home,
            landing_url=env.get("RESIGHT_LANDING_URL", str(home / "landing")),
            lake_url=env.get("RESIGHT_LAKE_URL", str(home / "lake")),
            pg_url=env.get("RESIGHT_PG_URL") or None,
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            partitions_start=env.get("RESIGHT_PARTITIONS_START", DEFAULT_PARTITIONS_START),
            registry_dir=(registry if "://" in registry else Path(registry)) if registry else None,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            analyst_role=env.get("RESIGHT_ANALYST_ROLE") or "analyst",
            analyst_password=env.get("RESIGHT_ANALYST_PASSWORD") or None,
            dagster_pg_url=env.get("RESIGHT_DAGSTER_PG_URL") or None,
            watch=WatchSettings.from_env(env),
            landing_queue_url=env.get("RESIGHT_LANDING_QUEUE_URL") or None,
            alerts=AlertSettings.from_env(env),
            engine=EngineSettings.from_env(env),
            emr=EmrSettings.from_env(env),
            freshness_grace=timedelta(hours=float(env.get("RESIGHT_FRESHNESS_GRACE_HOURS") or 2)),
            health=HealthSettings.from_env(env),
            registry_recheck_seconds=float(
                env.get("RESIGHT_REGISTRY_RECHECK_SECONDS") or DEFAULT_REGISTRY_RECHECK_SECONDS
            ),
            pipeline_workers=max(1, int(env.get("RESIGHT_PIPELINE_WORKERS") or min(2, os.cpu_count() or 1))),
            max_record_bytes=int(env.get("RESIGHT_MAX_RECORD_BYTES") or cls.max_record_bytes),
            max_file_bytes=int(env.get("RESIGHT_MAX_FILE_BYTES") or cls.max_file_bytes),
            spool_dir=Path(env["RESIGHT_SPOOL_DIR"]).expanduser() if env.get("RESIGHT_SPOOL_DIR") else home / "spool",
            sweep_grace=timedelta(hours=float(env.get("RESIGHT_SWEEP_GRACE_HOURS") or 6)),
            history_floor=date.fromisoformat(env.get("RESIGHT_HISTORY_FLOOR") or cls.history_floor.isoformat()),
            close_lookback_days=max(0, int(env.get("RESIGHT_CLOSE_LOOKBACK_DAYS") or 0)),
            close_cron=env.get("RESIGHT_CLOSE_CRON") or cls.close_cron,
            failpoints=tuple(parse_failpoints(env.get("RESIGHT_FAILPOINTS") or "").items()),
            s3_max_attempts=max(1, int(env.get("RESIGHT_S3_MAX_ATTEMPTS") or cls.s3_max_attempts)),
            pg_swap=PgSwapSettings.from_env(env),
            retention=RetentionSettings.from_env(env),
            from_process_env=from_process_env,
        )
