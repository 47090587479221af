"""Resources, built from Settings with the same keys in every environment."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import dagster as dg
import psycopg
from pydantic import PrivateAttr, field_validator

from resight_platform.engines import ENGINES, Engine
from resight_platform.engines.spark import spark_config
from resight_platform.io.events import EventQueue
from resight_platform.io.lake import LakeIOManager
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect, embedded_pg_url
from resight_platform.io.requests import flush_to
from resight_platform.io.roles import AnalystRole, ensure_analyst_role
from resight_platform.io.spark_lake import s3a_conf
from resight_platform.io.storage import DEFAULT_S3_MAX_ATTEMPTS, ObjectStore, open_store
from resight_platform.io.warehouse import WarehouseIOManager
from resight_platform.settings import DEFAULT_REGISTRY_RECHECK_SECONDS, Settings
from resight_platform.sources.mappings import Mappings
from resight_platform.sources.registry import (
    DEFAULT_HISTORY_FLOOR,
    Reader,
    Registry,
    RegistryCheck,
    check_registry,
    load_registry,
)

if TYPE_CHECKING:
    from dagster_pyspark import LazyPySparkResource
    from pyspark.sql import SparkSession

__all__ = [
    "ENGINE_TAG",
    "EngineResource",
    "LandingQueueResource",
    "MlflowResource",
    "RegistryResource",
    "Step",
    "StoreResource",
    "WarehouseResource",
    "analyst_role",
    "build_resources",
    "check_registry_at",
    "engine_for",
    "engine_resource",
    "load_registry_at",
    "prepare_warehouse",
    "resolve_pg_url",
    "secret_config",
]


class StoreResource(dg.ConfigurableResource):
    """An object store (local directory or ``s3://``): the landing zone or the dead-letter area;
    ``spool_dir`` is where its objects are copied to a local file (``Settings.spool_dir``).

    Its S3 requests are counted for ``component`` (``io/requests.py``; a caller may name another:
    ``landing.store(component="landing_sensor")``) and added to ``ops.request_counts`` at
    ``requests_pg_url`` when the step (or sensor tick) that used it ends."""

    url: str
    endpoint_url: str | None = None
    spool_dir: str | None = None
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    #: What spends this store's requests in a run (``bronze`` for the landing zone, ``lake``...).
    component: str | None = None
    #: The warehouse the request counts are flushed to (None: not flushed by this resource).
    requests_pg_url: str | None = None

    def store(self, component: str | None = None) -> ObjectStore:
        return open_store(
            self.url, self.endpoint_url, max_attempts=self.s3_max_attempts, component=component or self.component
        )

    def store_options(self) -> dict[str, Any]:
        """What opens this store besides its URL (``io.spark_lake``'s keyword arguments)."""
        return {"endpoint_url": self.endpoint_url, "s3_max_attempts": self.s3_max_attempts}

    def spool_path(self) -> Path | None:
        return Path(self.spool_dir) if self.spool_dir else None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """The requests counted in this process go to the warehouse (one upsert, only when some were
        counted; the first resource torn down takes every component's)."""
        flush_to(self.requests_pg_url, warn=context.log.warning if context.log else None)


class LandingQueueResource(dg.ConfigurableResource):
    """The SQS queue of the landing bucket's object-created notifications (``io/events.py``);
    ``queue_url`` empty: none, the landing sensor lists the landing zone instead."""

    queue_url: str = ""
    landing_url: str = ""
    endpoint_url: str | None = None
    wait_seconds: int = 1
    visibility_timeout: int = 300
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS

    def open(self) -> EventQueue | None:
        if not self.queue_url:
            return None
        return EventQueue.open(
            self.queue_url,
            self.landing_url,
            endpoint_url=self.endpoint_url,
            wait_seconds=self.wait_seconds,
            visibility_timeout=self.visibility_timeout,
            max_attempts=self.max_attempts,
        )


class WarehouseResource(dg.ConfigurableResource):
    """The Postgres warehouse (``ops``, ``gold``, ``marts``)."""

    pg_url: str

    def connect(self) -> psycopg.Connection:
        return connect(self.pg_url)


class RegistryResource(dg.ConfigurableResource):
    """The source registry and its mapping tables: the packaged one, or ``registry_dir`` (a local
    directory or an ``s3://`` prefix, read on ``endpoint_url``)."""

    registry_dir: str | None = None
    endpoint_url: str | None = None
    #: How often the registry's files are listed to see whether one changed
    #: (``RESIGHT_REGISTRY_RECHECK_SECONDS``); 0 lists on every call.
    recheck_seconds: float = DEFAULT_REGISTRY_RECHECK_SECONDS
    #: The history start of a provider that gives none (``RESIGHT_HISTORY_FLOOR``, ``YYYY-MM-DD``).
    history_floor: str = DEFAULT_HISTORY_FLOOR.isoformat()

    def load(self) -> Registry:
        """The registry as it is now: loaded again when one of its files changed, so a running
        daemon picks up an onboarding without a deploy. The files are listed at most once per
        ``recheck_seconds`` per process (a sensor tick or an asset calls this often; on S3 each
        listing is a request), so a change is seen within that time."""
        return _cached_registry(self.registry_dir, self.endpoint_url, self.history_floor, self._fingerprint())

    def _fingerprint(self) -> tuple[tuple[str, int, str, str], ...]:
        if self.registry_dir is None:
            return ()
        where, now = (self.registry_dir, self.endpoint_url), time.monotonic()
        with _CHECKED_LOCK:
            checked = _CHECKED.get(where)
        if checked is not None and now - checked[0] < self.recheck_seconds:
            return checked[1]
        fingerprint = _fingerprint(self.registry_dir, self.endpoint_url)
        with _CHECKED_LOCK:
            _CHECKED[where] = (now, fingerprint)
        return fingerprint

    def mappings(self) -> Mappings:
        """The registry's global mapping tables (not the package's, when they differ)."""
        return self.load().mappings


class MlflowResource(dg.ConfigurableResource):
    """Where demand-model runs are tracked and registered (``Settings.tracking_uri``);
    ``artifact_location`` is set for the local store so artifacts stay under ``RESIGHT_HOME``."""

    tracking_uri: str
    artifact_location: str | None = None


#: The run tag that chooses a run's engine (``polars`` | ``spark``) over the configured one.
ENGINE_TAG = "resight/engine"


class EngineResource(dg.ConfigurableResource):
    """Where a run's silver, gold, marts and ML features run: ``engine`` (``polars`` in this process, or
    ``spark``) and, for Spark, the session's master, Spark Connect URL and extra settings
    (``Settings.engine``). A run chooses its engine with the ``resight/engine`` tag, which wins
    over ``engine`` (:func:`engine_for`). Not with run config: Dagster replaces the resource's
    whole configuration with a run's, so ``{engine: spark}`` there would also drop the configured
    Connect URL and settings (checked with dagster 1.13).

    The Spark session comes from dagster-pyspark's ``LazyPySparkResource``, built on first use
    only: a Polars run never starts a session or a JVM. The session is not stopped at the
    end of a step: a run's steps share it, and the JVM goes with the run's process. Sessions of
    both kinds cannot share a process (pyspark refuses a Connect session beside a local one).
    """

    engine: str = "polars"
    spark_master: str = "local[*]"
    #: A Spark Connect URL (``sc://host:port``, maybe with a token): wins over the master.
    spark_remote: str | None = None
    #: The deployment's own Spark settings (``RESIGHT_SPARK_CONF``), over the platform's.
    spark_conf: dict[str, str] | None = None
    _spark: Any = PrivateAttr(default=None)
    _started: bool = PrivateAttr(default=False)

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in ENGINES:
            raise ValueError(f"engine {value!r} is not an engine; engines are {', '.join(ENGINES)}")
        return value

    def spark_config(self) -> dict[str, str]:
        """The session's settings: the platform's (``engines.spark``) under the deployment's."""
        return spark_config(master=self.spark_master, remote=self.spark_remote, extra=self.spark_conf)

    def engine_of_run(self, tags: Mapping[str, str]) -> Engine:
        """The engine of a run with ``tags``: its ``resight/engine`` tag if set, else ``engine``."""
        chosen = tags.get(ENGINE_TAG, self.engine).strip().lower()
        if chosen not in ENGINES:
            raise ValueError(f"run tag {ENGINE_TAG}={chosen!r} is not an engine; engines are {', '.join(ENGINES)}")
        return chosen  # type: ignore[return-value]

    @property
    def pyspark(self) -> LazyPySparkResource:
        """dagster-pyspark's lazy resource for :meth:`spark_config` (no session until asked)."""
        if self._spark is None:
            try:
                from dagster_pyspark import LazyPySparkResource
            except ImportError as error:  # pragma: no cover - depends on the install
                raise RuntimeError(
                    "the Spark engine needs the spark extra: pip install 'resight_platform[spark]' (make install does)"
                ) from error
            self._spark = LazyPySparkResource(spark_config=self.spark_config())
        return self._spark

    @property
    def spark_session(self) -> SparkSession:
        """The Spark session (local, or a Spark Connect client), started on first use."""
        spark: SparkSession = self.pyspark.spark_session
        self._started = True
        return spark

    @property
    def spark_started(self) -> bool:
        """Whether this resource has started (or joined) a Spark session."""
        return self._started


class Step(Protocol):
    """What an asset's body needs of its step: Dagster's ``AssetExecutionContext`` has it, and so
    has a set run's view of one asset (``defs/landing.py``), whose partitions are an exact set
    rather than the range a Dagster run targets."""

    @property
    def partition_keys(self) -> Sequence[str]: ...
    @property
    def log(self) -> dg.DagsterLogManager: ...
    @property
    def run(self) -> dg.DagsterRun: ...
    @property
    def run_id(self) -> str: ...
    @property
    def resources(self) -> Any: ...
    @property
    def op_def(self) -> dg.OpDefinition: ...


def engine_for(context: Step | dg.OpExecutionContext) -> Engine:
    """The engine a step runs on: the run's ``resight/engine`` tag if set, else the ``engine``
    resource's (``RESIGHT_ENGINE``). The asset must take the
    resource (``engine: EngineResource``), which also hands it the session."""
    resource = getattr(context.resources, "engine", None)
    if not isinstance(resource, EngineResource):
        raise TypeError(
            f"{context.op_def.name} has no engine resource: add a parameter `engine: EngineResource` to choose one"
        )
    return resource.engine_of_run(context.run.tags)


def load_registry_at(
    location: str | Path | None, endpoint_url: str | None = None, history_floor: date = DEFAULT_HISTORY_FLOOR
) -> Registry:
    """Load and validate the registry at ``location``: None for the packaged one, a local
    directory, or any URL the object store opens (``s3://bucket/prefix``), whose files are read by
    their path under it. ``history_floor``: ``Settings.history_floor``."""
    if location is None or "://" not in str(location):
        return load_registry(Path(location) if location else None, history_floor=history_floor)
    return load_registry(str(location), read=_store_reader(str(location), endpoint_url), history_floor=history_floor)


def check_registry_at(
    location: str | Path | None,
    endpoint_url: str | None = None,
    history_floor: date = DEFAULT_HISTORY_FLOOR,
    today: date | None = None,
) -> RegistryCheck:
    """Validate the registry at ``location`` (as :func:`load_registry_at`) and return its errors
    and warnings instead of raising (``resight onboard check``)."""
    if location is None or "://" not in str(location):
        return check_registry(Path(location) if location else None, history_floor=history_floor, today=today)
    read = _store_reader(str(location), endpoint_url)
    return check_registry(str(location), read=read, history_floor=history_floor, today=today)


def _store_reader(location: str, endpoint_url: str | None) -> Reader:
    """Reads a registry's files by their path under ``location`` on the object store."""
    store = open_store(location, endpoint_url, component=REGISTRY_COMPONENT)

    def read(name: str) -> bytes | None:
        return store.read_bytes(name) if store.exists(name) else None

    return read


def _fingerprint(location: str | None, endpoint_url: str | None) -> tuple[tuple[str, int, str, str], ...]:
    """What changes when a registry file changes: key, size, etag, modification time of each."""
    if location is None:
        return ()
    store = open_store(location, endpoint_url, component=REGISTRY_COMPONENT)
    return tuple((o.key, o.size, o.etag, o.last_modified.isoformat()) for o in store.list())


#: The component of the registry's reads and listings (``io/requests.py``).
REGISTRY_COMPONENT = "registry"

#: When each registry location was last listed, and what the listing gave.
_CHECKED: dict[tuple[str, str | None], tuple[float, tuple[tuple[str, int, str, str], ...]]] = {}
_CHECKED_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _cached_registry(
    registry_dir: str | None,
    endpoint_url: str | None,
    history_floor: str,
    fingerprint: tuple[tuple[str, int, str, str], ...],
) -> Registry:
    return load_registry_at(registry_dir, endpoint_url, date.fromisoformat(history_floor))


def resolve_pg_url(settings: Settings) -> str:
    """``RESIGHT_PG_URL`` when set; otherwise the embedded server, started if it is not running."""
    if settings.pg_url:
        return settings.pg_url
    return embedded_pg_url(settings.pg_data_dir)


def prepare_warehouse(conn: psycopg.Connection, settings: Settings) -> None:
    """Bring the warehouse of ``conn`` to the platform's schema and put the analyst role in place:
    what every entry point does before it touches the warehouse."""
    migrate(conn)
    ensure_analyst_role(conn, analyst_role(settings))


def analyst_role(settings: Settings) -> AnalystRole:
    """The analyst role of ``settings``: on the embedded server it may log in without a password
    (trust on a socket only its own user reaches; ``io/roles.py``)."""
    return AnalystRole(settings.analyst_role, settings.analyst_password, login=settings.embedded)


def secret_config(settings: Settings, setting: str, value: str) -> str:
    """``value`` as Dagster config: ``dg.EnvVar`` of its variable when ``value`` is the setting
    read from this process's environment, so the UI, the run config and the resource snapshots
    show the variable's name, never the value (``Settings.secret_variable``). Otherwise the value
    itself: the embedded server's URL (a local socket, no password) or a URL a test passed."""
    name = settings.secret_variable(setting)
    if name is not None and value == settings.secret_value(setting):
        return dg.EnvVar(name)
    return value


def build_resources(settings: Settings, pg_url: str | None = None) -> dict[str, Any]:
    """Every resource the definitions need, keyed as the assets expect, the warehouse prepared
    (:func:`prepare_warehouse`). Secret-bearing URLs are given as ``dg.EnvVar`` (:func:`secret_config`)."""
    pg_url = pg_url or resolve_pg_url(settings)
    with connect(pg_url) as conn:
        prepare_warehouse(conn, settings)
    warehouse_url = secret_config(settings, "pg_url", pg_url)
    attempts = settings.s3_max_attempts
    # Request counts (io/requests.py): each store's component in a run, flushed to the warehouse.
    metered = {"requests_pg_url": warehouse_url}
    return {
        "landing": StoreResource(
            url=settings.landing_url,
            endpoint_url=settings.aws_endpoint_url,
            spool_dir=str(settings.spool_dir) if settings.spool_dir else None,
            s3_max_attempts=attempts,
            component="bronze",
            **metered,
        ),
        "dead_letter": StoreResource(
            url=settings.dead_letter_url,
            endpoint_url=settings.aws_endpoint_url,
            s3_max_attempts=attempts,
            component="dead_letter",
            **metered,
        ),
        "lake": StoreResource(
            url=settings.lake_url,
            endpoint_url=settings.aws_endpoint_url,
            s3_max_attempts=attempts,
            component="lake",
            **metered,
        ),
        "landing_queue": LandingQueueResource(
            queue_url=settings.landing_queue_url or "",
            landing_url=settings.landing_url,
            endpoint_url=settings.aws_endpoint_url,
            wait_seconds=settings.watch.events_wait_seconds,
            visibility_timeout=settings.watch.events_visibility_timeout,
            max_attempts=attempts,
        ),
        "warehouse": WarehouseResource(pg_url=warehouse_url),
        "registry": RegistryResource(
            registry_dir=str(settings.registry_dir) if settings.registry_dir else None,
            endpoint_url=settings.aws_endpoint_url,
            recheck_seconds=settings.registry_recheck_seconds,
            history_floor=settings.history_floor.isoformat(),
        ),
        "lake_io_manager": LakeIOManager(
            lake_url=settings.lake_url, endpoint_url=settings.aws_endpoint_url, s3_max_attempts=attempts, **metered
        ),
        "warehouse_io_manager": WarehouseIOManager(
            lake_url=settings.lake_url,
            endpoint_url=settings.aws_endpoint_url,
            s3_max_attempts=attempts,
            pg_url=warehouse_url,
            **metered,
            pg_lock_timeout_ms=settings.pg_swap.lock_timeout_ms,
            pg_swap_attempts=settings.pg_swap.attempts,
            pg_swap_backoff_ms=settings.pg_swap.backoff_ms,
            pg_swap_backoff_max_ms=settings.pg_swap.backoff_max_ms,
        ),
        "mlflow": MlflowResource(
            tracking_uri=secret_config(settings, "mlflow_tracking_uri", settings.tracking_uri),
            artifact_location=None if settings.mlflow_tracking_uri else str(settings.mlflow_dir / "artifacts"),
        ),
        "engine": engine_resource(settings),
    }


def engine_resource(settings: Settings) -> EngineResource:
    """The ``engine`` resource of ``settings`` (``Settings.engine``). A lake on S3 adds the
    ``fs.s3a`` settings a Spark cluster reads it with (:func:`~resight_platform.io.spark_lake.s3a_conf`;
    ``RESIGHT_SPARK_CONF`` wins over them). A Connect URL from this process's environment is given
    by its variable's name (it may carry a token)."""
    engine = settings.engine
    remote = engine.spark_remote
    conf = s3a_conf(settings) if settings.lake_url.startswith("s3://") else {}
    conf.update(engine.spark_conf)
    return EngineResource(
        engine=engine.name,
        spark_master=engine.spark_master,
        spark_remote=secret_config(settings, "spark_remote", remote) if remote else None,
        spark_conf=conf,
    )
