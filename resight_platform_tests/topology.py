"""The production topology as processes on this machine: a harness for test_topology.py and
bench/redeploy.

Separate processes, as deploy/docker-compose.yml runs them:

- **code server**: ``dagster api grpc -m resight_platform.definitions`` on a TCP port (readiness:
  ``dagster api grpc-health-check``);
- **webserver**: ``dagster-webserver -w workspace.yaml`` with a workspace derived from
  deploy/workspace.yaml pointing at that port (readiness: ``GET /server_info``);
- **daemon**: ``dagster-daemon run -w workspace.yaml`` (readiness: a heartbeat of the new daemon's
  id in the instance's ``daemon_heartbeats``);
- **MLflow**: ``mlflow server`` (readiness: ``GET /health``), artifacts on S3;
- **Postgres**: a server of its own, started with ``pg_ctl`` from pgserver's binaries (not the
  session's shared server, so that a test may restart it), over TCP, databases ``resight``
  (warehouse), ``dagster`` (instance) and ``mlflow``;
- **S3**: the tests' moto server, reached over HTTP through :class:`BlockingProxy`, a TCP proxy the
  test can stop forwarding through for an outage (moto loses its state when restarted).

The instance's ``dagster.yaml`` is deploy/dagster.yaml (storage, queued run coordinator and its
limits, run monitoring, run retries, retention, sensor threads) with one change: compute logs
stay on local disk instead of the S3 bucket (:func:`instance_config`).

Every process runs in its own session (process group), logs to a file of its own (tails in
:meth:`Topology.logs`), and stops with SIGTERM to its group (SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import yaml

from resight_platform.io.postgres import database_url, sqlalchemy_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = REPO_ROOT / "deploy"
LOCATION = "resight_platform.definitions"
BIN = Path(sys.executable).parent
AWS_KEY = "testing"
AWS_REGION = "us-east-1"

#: Variables of the calling shell that would point a process at another home, store or instance.
SCRUBBED = (
    "RESIGHT_LANDING_URL",
    "RESIGHT_LAKE_URL",
    "RESIGHT_REGISTRY_DIR",
    "RESIGHT_PG_URL",
    "RESIGHT_DAGSTER_PG_URL",
    "DAGSTER_HOME",
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)

#: Runs in these states are not finished.
UNFINISHED = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for(what: str, check: Callable[[], bool], timeout: float, alive: Callable[[], None] | None = None) -> float:
    """Poll ``check`` until it is true (seconds waited); ``alive`` raises when a process died."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if check():
                return time.monotonic() - started
        if alive is not None:
            alive()
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.5)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- Postgres ---------------------------------------------------------------------------------------


class PostgresServer:
    """A Postgres server of its own (pgserver's binaries, ``pg_ctl``), on a TCP port of localhost,
    trust authentication. As root, postgres runs as pgserver's ``pgserver`` user, as pgserver does."""

    def __init__(self, root: Path) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.user = "pgserver" if os.geteuid() == 0 else None
        root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=utf8")

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        subprocess.run(command, check=True, capture_output=True, timeout=120, user=self.user, cwd=self.root)

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c max_connections=300 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown (open connections are closed, as a restart of the service does)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return database_url(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", database)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')  # fixed names of this module
        return self.url(name)


# --- S3 outage ----------------------------------------------------------------------------------------


class BlockingProxy:
    """A TCP proxy to ``upstream`` (host, port). :meth:`block` closes every open connection and
    refuses new ones (accepted and closed at once: a dead endpoint) until :meth:`unblock`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._blocked = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="s3-blocking-proxy", daemon=True)
        self._thread.start()

    def block(self) -> None:
        self._blocked.set()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def unblock(self) -> None:
        self._blocked.clear()

    def close(self) -> None:
        self._stopped.set()
        self.block()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._blocked.is_set():
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open.update((client, upstream))
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._blocked.is_set():
                for key, _ in selector.select(timeout=0.5):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            with self._lock:
                self._open.difference_update((client, upstream))
            for sock in (client, upstream):
                sock.close()


# --- processes ----------------------------------------------------------------------------------------


@dataclass
class Service:
    """One process of the topology: restartable, logged to ``log``, ready when ``ready()``."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    ready: Callable[[], bool]
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None
    #: Seconds each start took to be ready, and each stop to finish.
    starts: list[float] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)
    #: Process groups of replaced processes (:meth:`replace`), killed by :meth:`reap`.
    orphans: list[int] = field(default_factory=list)

    def start(self, timeout: float = 180.0) -> float:
        before = time.monotonic()
        with open(self.log, "ab") as out:
            out.write(f"\n=== {self.name} starting at {time.strftime('%H:%M:%S')} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self.name, self.ready, timeout, self.check_alive)
        self.starts.append(time.monotonic() - before)
        return self.starts[-1]

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}")

    def stop(self, grace: float = 30.0) -> float:
        """As a container is stopped: SIGTERM to the main process, SIGKILL to its whole process group
        (run workers of the code server included) after ``grace`` seconds. Dagster maps SIGTERM to
        an interrupt; the code server then stops serving and, on exit, waits for the runs it
        launched (its non-daemonic child processes) to finish: a drain within the grace period."""
        before = time.monotonic()
        proc, self.proc = self.proc, None
        if proc is None:
            return 0.0
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self.stops.append(time.monotonic() - before)
        return self.stops[-1]

    def replace(self, timeout: float = 180.0) -> float:
        """The code server replaced as a rolling update replaces it: the serving process is gone at
        once (SIGKILL to it alone: its port refuses connections, as a pod taken out of its
        Service's endpoints), the runs it launched live on and finish (as run Jobs of the Helm
        chart's K8sRunLauncher do), and a new process serves. Seconds from the kill to ready.

        Not SIGTERM: on SIGTERM Dagster's gRPC server drains, keeps answering and refuses every run
        launch ("Tried to start a run on a server after telling it to shut down") until its runs
        finish, and the run queue fails a refused run for good."""
        before = time.monotonic()
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            self.orphans.append(proc.pid)  # its process group: the run workers still running
        self.start(timeout)
        return time.monotonic() - before

    def reap(self) -> None:
        """Kill what is left of the process groups :meth:`replace` left running."""
        for pgid in self.orphans:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, sig)
                time.sleep(0.5)
        self.orphans.clear()

    def restart(self, timeout: float = 180.0) -> float:
        """Stop, then start: seconds from the stop to the new process being ready."""
        before = time.monotonic()
        self.stop()
        self.start(timeout)
        return time.monotonic() - before


#: What deploy/dagster.yaml lacks for a code server to be replaced while runs are queued, added
#: here and to be added there (issue 19): without it, the run queue fails every run it tries to
#: launch while the code server is away ("Caught an unrecoverable error while dequeuing the run"),
#: and run retries do not help (a retry launched in the same window fails the same way, and the
#: retry daemon gives up on a run when it cannot reach the code server to build its retry). With it
#: the queue puts the run back and pauses that location's launches for the delay, up to 12 times:
#: two minutes of code server away.
#: Step retries long enough for a Postgres restart and a 30 s S3 outage (about 78 s of waiting:
#: settings.StepRetrySettings), as deploy/README.md recommends for production; the landing
#: sensor lists two weeks of dates (the three samples' dates are a week back and more).
TOPOLOGY_ENV = {"RESIGHT_STEP_RETRIES": "4", "RESIGHT_STEP_RETRY_DELAY_S": "3", "RESIGHT_WATCH_HOT_DAYS": "14"}
RUN_QUEUE_AMENDMENTS = {"max_user_code_failure_retries": 12, "user_code_failure_retry_delay": 10}


def instance_config(compute_logs: Path) -> dict[str, Any]:
    """deploy/dagster.yaml, compute logs on local disk instead of S3, and the run queue's
    :data:`RUN_QUEUE_AMENDMENTS` where deploy/dagster.yaml does not set them yet."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    queue = config["run_coordinator"]["config"]
    for key, value in RUN_QUEUE_AMENDMENTS.items():
        queue.setdefault(key, value)
    config["compute_logs"] = {
        "module": "dagster._core.storage.local_compute_log_manager",
        "class": "LocalComputeLogManager",
        "config": {"base_dir": str(compute_logs)},
    }
    return config


def workspace_config(port: int) -> dict[str, Any]:
    """deploy/workspace.yaml, pointed at the code server's host and port."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (entry,) = config["load_from"]
    entry["grpc_server"].update(host="127.0.0.1", port=port)
    assert entry["grpc_server"]["location_name"] == LOCATION
    return config


class Topology:
    """The whole production topology under ``root`` (see the module's docstring).

    ``s3_upstream`` is the moto server's URL; ``extra_env`` adds settings for every process."""

    def __init__(self, root: Path, s3_upstream: str, *, partitions_start: str, extra_env: dict[str, str]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.logs_dir = root / "logs"
        self.logs_dir.mkdir(exist_ok=True)
        host, _, port = s3_upstream.removeprefix("http://").partition(":")
        self.moto = s3_upstream
        self.proxy = BlockingProxy(host, int(port))
        self.postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="resight-topo-pg-")))
        self.postgres.start()
        self.pg_url = self.postgres.create_database("resight")
        dagster_url = self.postgres.create_database("dagster")
        self.dagster_pg_url = dagster_url
        suffix = os.urandom(4).hex()
        self.landing_bucket, self.lake_bucket = f"landing-{suffix}", f"lake-{suffix}"
        s3 = self.s3(direct=True)
        for bucket in (self.landing_bucket, self.lake_bucket):
            s3.create_bucket(Bucket=bucket)
        self.landing_url = f"s3://{self.landing_bucket}/landing"

        home = root / "dagster_home"
        home.mkdir(exist_ok=True)
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(root / "compute_logs")))
        self.grpc_port, self.web_port, self.mlflow_port = free_port(), free_port(), free_port()
        workspace = root / "workspace.yaml"
        workspace.write_text(yaml.safe_dump(workspace_config(self.grpc_port)))

        env = {name: value for name, value in os.environ.items() if name not in SCRUBBED}
        env.update(
            DAGSTER_HOME=str(home),
            RESIGHT_HOME=str(root / "resight_home"),
            RESIGHT_PG_URL=self.pg_url,
            RESIGHT_DAGSTER_PG_URL=sqlalchemy_url(dagster_url),
            RESIGHT_LANDING_URL=self.landing_url,
            RESIGHT_LAKE_URL=f"s3://{self.lake_bucket}/lake",
            RESIGHT_PARTITIONS_START=partitions_start,
            MLFLOW_TRACKING_URI=f"http://127.0.0.1:{self.mlflow_port}",
            AWS_ENDPOINT_URL=self.proxy.url,
            AWS_ACCESS_KEY_ID=AWS_KEY,
            AWS_SECRET_ACCESS_KEY=AWS_KEY,
            AWS_DEFAULT_REGION=AWS_REGION,
            AWS_CONFIG_FILE=str(root / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(root / "no-aws-credentials"),
            # As deploy/docker-compose.yml sets them for the Dagster services.
            DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS="true",
            DAGSTER_EVENT_BATCH_SIZE="1000",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env)
        self.env = env

        def service(name: str, command: list[str], ready: Callable[[], bool]) -> Service:
            return Service(name, command, env, self.logs_dir / f"{name}.log", ready, root)

        self.code_server = service(
            "code-server",
            [
                *(str(BIN / "dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(self.grpc_port)),
                *("-m", LOCATION, "--location-name", LOCATION),
            ],
            self._grpc_ready,
        )
        self.webserver = service(
            "webserver",
            [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(self.web_port)],
            self._web_ready,
        )
        self._daemon_ids: set[str] = set()
        self.daemon = service("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], self._daemon_ready)
        self.mlflow = service(
            "mlflow",
            [
                *(str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.mlflow_port)),
                *("--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
                *("--default-artifact-root", f"s3://{self.lake_bucket}/mlflow"),
            ],
            lambda: self._http_ok(f"http://127.0.0.1:{self.mlflow_port}/health"),
        )
        self.services = [self.mlflow, self.code_server, self.daemon, self.webserver]

    # --- lifecycle

    def start(self) -> None:
        """MLflow, then the code server (it prepares the warehouse), the daemon, the webserver."""
        for service in self.services:
            service.start()

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop(grace=15)
            service.reap()
        self.postgres.stop()
        self.proxy.close()
        shutil.rmtree(self.postgres.root, ignore_errors=True)

    def logs(self, lines: int = 40) -> str:
        """The tail of every process's log, for a failure's message."""
        parts = [f"--- {s.name} ({s.log}) ---\n{tail(s.log, lines)}" for s in self.services]
        parts.append(f"--- postgres ---\n{tail(self.postgres.log, 10)}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        for service in self.services:
            if service.proc is not None:
                service.check_alive()

    # --- readiness

    def _grpc_ready(self) -> bool:
        result = subprocess.run(
            [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(self.grpc_port), "-h", "127.0.0.1"],
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        return result.returncode == 0

    @staticmethod
    def _http_ok(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)

    def _web_ready(self) -> bool:
        return self._http_ok(f"http://127.0.0.1:{self.web_port}/server_info")

    def heartbeats(self) -> dict[str, str]:
        """The daemon id of each daemon type's latest heartbeat."""
        with psycopg.connect(self.dagster_pg_url, connect_timeout=5) as conn:
            rows = conn.execute("select daemon_type, daemon_id from daemon_heartbeats").fetchall()
        return {str(kind): str(daemon_id) for kind, daemon_id in rows}

    def _daemon_ready(self) -> bool:
        """A new daemon's sensor and run-queue threads have both beaten (an id no earlier daemon had)."""
        with contextlib.suppress(psycopg.Error):
            if not self._daemon_ids:
                self._daemon_ids = set(self.heartbeats().values()) | {"-"}
        beats = self.heartbeats()
        fresh = [beats.get(kind, "-") not in self._daemon_ids for kind in ("SENSOR", "QUEUED_RUN_COORDINATOR")]
        if all(fresh):
            self._daemon_ids |= set(beats.values())
            return True
        return False

    # --- clients

    def s3(self, direct: bool = False) -> Any:
        """A boto3 S3 client on the proxy (``direct``: on moto itself, past an outage)."""
        return boto3.client(
            "s3",
            endpoint_url=self.moto if direct else self.proxy.url,
            region_name=AWS_REGION,
            aws_access_key_id=AWS_KEY,
            aws_secret_access_key=AWS_KEY,
        )

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        """A GraphQL request to the webserver: the answer's ``data`` (errors raise)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read())
        if answer.get("errors"):
            raise RuntimeError(f"GraphQL errors: {answer['errors']}")
        data: dict[str, Any] = answer["data"]
        return data

    def reload_location(self) -> str:
        """``reloadRepositoryLocation`` as the UI's "Reload" sends it: the location's load status."""
        data = self.graphql(RELOAD, {"location": LOCATION})["reloadRepositoryLocation"]
        if data["__typename"] != "WorkspaceLocationEntry":
            raise RuntimeError(f"reload of {LOCATION}: {data}")
        status: str = data["loadStatus"]
        return status

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the instance: id, job, status, its tags."""
        with psycopg.connect(self.dagster_pg_url, connect_timeout=5) as conn:
            runs = conn.execute("select run_id, pipeline_name, status from runs").fetchall()
            tags = conn.execute("select run_id, key, value from run_tags").fetchall()
        by_run: dict[str, dict[str, str]] = {}
        for run_id, key, value in tags:
            by_run.setdefault(run_id, {})[key] = value
        return [{"run_id": r, "job": j, "status": s, "tags": by_run.get(r, {})} for r, j, s in runs]


RELOAD = """
mutation Reload($location: String!) {
  reloadRepositoryLocation(repositoryLocationName: $location) {
    __typename
    ... on WorkspaceLocationEntry { name loadStatus locationOrLoadError { __typename } }
    ... on PythonError { message }
    ... on RepositoryLocationNotFound { message }
    ... on UnauthorizedError { message }
  }
}
"""


def stuck_and_unretried(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Runs not finished, and failed runs with no successful retry down their line (the retry of a
    failed run is the run tagged ``dagster/parent_run_id`` with its id; a retry may fail and be
    retried in turn)."""
    children: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        parent = run["tags"].get("dagster/parent_run_id")
        if parent:
            children.setdefault(parent, []).append(run)

    def succeeded_later(run_id: str) -> bool:
        return any(c["status"] == "SUCCESS" or succeeded_later(c["run_id"]) for c in children.get(run_id, []))

    stuck = [f"{r['run_id']} {r['job']} {r['status']}" for r in runs if r["status"] in UNFINISHED]
    unretried = [
        f"{r['run_id']} {r['job']}" for r in runs if r["status"] == "FAILURE" and not succeeded_later(r["run_id"])
    ]
    return stuck, unretried


# --- files landing --------------------------------------------------------------------------------------


@dataclass
class Drop:
    key: str
    landed_at: float


class Feeder:
    """Drops files (local path → landing key) onto S3 one every ``interval`` seconds, in a thread;
    a put that fails (an S3 outage) is tried again until it lands: the partner's delivery retries."""

    def __init__(self, topology: Topology, files: list[tuple[Path, str]], interval: float) -> None:
        self.topology, self.files, self.interval = topology, files, interval
        self.dropped: list[Drop] = []
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)
        self._stop = threading.Event()

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def join(self, timeout: float = 900) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _run(self) -> None:
        s3 = self.topology.s3()
        prefix = "landing/"
        for path, key in self.files:
            body = path.read_bytes()
            while not self._stop.is_set():
                try:
                    s3.put_object(Bucket=self.topology.landing_bucket, Key=prefix + key, Body=body)
                    break
                except Exception:  # an outage: the partner tries again
                    self.errors += 1
                    time.sleep(1.0)
            else:
                return
            self.dropped.append(Drop(key, time.time()))
            if self._stop.wait(self.interval):
                return


def sample_files(root: Path) -> list[tuple[Path, str]]:
    """Every file of a generated sample under ``root`` with its landing key, the catalogue, stores
    and customers before the sales of the same date (partners' usual order)."""
    order = {"catalog": 0, "stores": 1, "customers": 2, "sales": 3}
    files = [(path, path.relative_to(root).as_posix()) for path in root.rglob("*") if path.is_file()]

    def rank(item: tuple[Path, str]) -> tuple[str, int, str]:
        parts = item[1].split("/")
        date = parts[2] if len(parts) > 2 else ""
        return (date, order.get(parts[1] if len(parts) > 1 else "", 9), item[1])

    return sorted(files, key=rank)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


@contextlib.contextmanager
def running(topology: Topology) -> Iterator[Topology]:
    """The topology started, and closed (every process stopped) whatever happens."""
    try:
        topology.start()
        yield topology
    finally:
        topology.close()


# --- a scenario: a sample dropped, the platform settled, what became of every file --------------------


@dataclass
class Sample:
    """A generated sample to drop: its files (path, landing key), the keys expected dead-lettered,
    and its valid sales lines and net amount (the manifest's)."""

    files: list[tuple[Path, str]]
    dead: set[str]
    lines: int
    net: str


def make_sample(root: Path, start: Any, *, providers: int, days: int, lines_per_day: int, seed: int) -> Sample:
    from resight_platform.sample import generate

    manifest = generate(
        str(root / "landing"),
        providers=providers,
        days=days,
        start=start,
        seed=seed,
        sales_lines_per_day=lines_per_day,
        manifest_url=str(root / "manifest.json"),
    )
    return Sample(
        files=sample_files(root / "landing"),
        dead={entry["key"] for entry in manifest.dead_letter},
        lines=int(manifest.sales["lines"]),
        net=str(manifest.sales["net_amount"]),
    )


def without_keys(sample: Sample, seen: set[str]) -> Sample:
    """``sample`` less the files whose keys an earlier sample dropped on the same landing zone
    (the generator's misplaced keys, e.g. a bad date, repeat across samples): the ledger keeps one
    entry per key, so a repeat would only be recognised as already seen."""
    files = [(path, key) for path, key in sample.files if key not in seen]
    assert all(key in sample.dead for _, key in sample.files if key in seen), "only refused keys repeat"
    return Sample(files, sample.dead & {key for _, key in files}, sample.lines, sample.net)


@dataclass
class Outcome:
    """What became of a sample's files once the platform settled (or the deadline passed)."""

    ledger: dict[str, tuple[str, float | None]]
    fact_rows: int
    fact_net: str
    duplicate_lines: int
    stuck: list[str]
    unretried: list[str]
    runs: int
    failed_runs: int
    settled_after_s: float

    def problems(self, sample: Sample, dropped: list[Drop]) -> list[str]:
        """Every way the outcome differs from the sample: lost, wrongly placed or doubled files,
        fact lines off the manifest, stuck runs, failed runs never retried."""
        out = []
        keys = [drop.key for drop in dropped]
        if len(keys) != len(set(keys)):
            out.append("a key was dropped twice")
        if set(keys) != {key for _, key in sample.files}:
            out.append(f"dropped {len(keys)} of {len(sample.files)} files")
        expected = {key: ("dead_lettered" if key in sample.dead else "loaded") for key in keys}
        got = {key: self.ledger.get(key, ("missing", None))[0] for key in keys}
        wrong = {key: (got[key], want) for key, want in expected.items() if got[key] != want}
        if wrong:
            out.append(f"ledger status (got, expected) of {len(wrong)} files: {dict(list(wrong.items())[:8])}")
        if (self.fact_rows, self.fact_net) != (sample.lines, sample.net):
            out.append(
                f"gold.fact_sales {self.fact_rows} lines / {self.fact_net} USD, manifest {sample.lines} / {sample.net}"
            )
        if self.duplicate_lines:
            out.append(f"{self.duplicate_lines} duplicate lines in gold.fact_sales")
        if self.stuck:
            out.append(f"runs not finished: {self.stuck[:8]}")
        if self.unretried:
            out.append(f"failed runs without a successful retry: {self.unretried[:8]}")
        return out


def observe(topology: Topology, sample: Sample) -> Outcome:
    """The ledger (status, processed_at as a UNIX time) of the sample's keys, its lines in gold, runs."""
    keys = [key for _, key in sample.files]
    with psycopg.connect(topology.pg_url, connect_timeout=5) as conn:
        ledger = {
            key: (status, processed.timestamp() if processed else None)
            for key, status, processed in conn.execute(
                "select file_key, status, processed_at from ops.ingestion_ledger where file_key = any(%s)", (keys,)
            ).fetchall()
        }
        row = conn.execute(
            "select count(*), coalesce(sum(net_amount), 0)::text,"
            " count(*) - count(distinct (provider, order_id, line_no))"
            " from gold.fact_sales where source_file = any(%s)",
            (keys,),
        ).fetchone()
    assert row is not None
    runs = topology.runs()
    stuck, unretried = stuck_and_unretried(runs)
    return Outcome(
        ledger=ledger,
        fact_rows=int(row[0]),
        fact_net=str(row[1]),
        duplicate_lines=int(row[2]),
        stuck=stuck,
        unretried=unretried,
        runs=len(runs),
        failed_runs=sum(1 for r in runs if r["status"] == "FAILURE"),
        settled_after_s=0.0,
    )


def settle(topology: Topology, sample: Sample, feeder: Feeder, timeout: float = 600.0) -> Outcome:
    """Wait until the feeder is done and every dropped file is in the ledger with its final status,
    the sample's lines are in gold and no run is queued or in progress (or ``timeout`` passes):
    the outcome then."""
    started = time.monotonic()
    outcome: Outcome | None = None
    while time.monotonic() - started < timeout:
        topology.check_alive()
        if feeder.done:
            with contextlib.suppress(psycopg.Error):
                outcome = observe(topology, sample)
                final = all(
                    outcome.ledger.get(d.key, ("", None))[0] in ("loaded", "dead_lettered") for d in feeder.dropped
                )
                if final and outcome.fact_rows >= sample.lines and not outcome.stuck:
                    break
        time.sleep(2.0)
    outcome = observe(topology, sample)
    outcome.settled_after_s = round(time.monotonic() - started, 1)
    return outcome


@dataclass
class Window:
    """A disruption: its name and when it began and ended (``time.time()``)."""

    name: str
    began: float
    ended: float


def latencies(outcome: Outcome, dropped: list[Drop], windows: list[Window]) -> dict[str, dict[str, Any]]:
    """Seconds from a file landing to its ledger entry ``loaded``, p50/p95/max and count, for the
    files landed before the first window, during each window (and until the next one begins or, for
    the last, 30 s after it ends: the files that landed while the platform caught up), and after."""
    groups: dict[str, list[float]] = {"before": []}
    for window in windows:
        groups[f"during {window.name}"] = []
    groups["after"] = []
    for drop in dropped:
        status, processed = outcome.ledger.get(drop.key, ("missing", None))
        if status != "loaded" or processed is None:
            continue
        group = "after"
        if not windows or drop.landed_at < windows[0].began:
            group = "before"
        else:
            for index, window in enumerate(windows):
                until = windows[index + 1].began if index + 1 < len(windows) else window.ended + 30
                if window.began <= drop.landed_at < until:
                    group = f"during {window.name}"
                    break
        groups[group].append(processed - drop.landed_at)
    return {
        name: {
            "files": len(values),
            "p50_s": percentile(values, 50),
            "p95_s": percentile(values, 95),
            "max_s": round(max(values), 2) if values else None,
        }
        for name, values in groups.items()
    }


@contextlib.contextmanager
def window(name: str, windows: list[Window]) -> Iterator[None]:
    """Record the block as a disruption window named ``name``."""
    began = time.time()
    try:
        yield
    finally:
        windows.append(Window(name, began, time.time()))


def redeploy(topology: Topology, windows: list[Window], pause: float) -> dict[str, float]:
    """The production order: the code server replaced (stopped, started, the location reloaded in
    the webserver), then the daemon, then the webserver, ``pause`` seconds apart. Seconds each took."""
    took: dict[str, float] = {}
    with window("code server", windows):
        before = time.monotonic()
        topology.code_server.replace()
        status = topology.reload_location()
        assert status == "LOADED", f"location after reload: {status}"
        took["code server"] = round(time.monotonic() - before, 1)
    time.sleep(pause)
    with window("daemon", windows):
        took["daemon"] = round(topology.daemon.restart(), 1)
    time.sleep(pause)
    with window("webserver", windows):
        took["webserver"] = round(topology.webserver.restart(), 1)
    return took


def postgres_restart(topology: Topology, windows: list[Window], down: float = 5.0) -> float:
    """Postgres stopped (fast: connections closed), ``down`` seconds off, started again."""
    with window("postgres restart", windows):
        before = time.monotonic()
        topology.postgres.stop()
        time.sleep(down)
        topology.postgres.start()
    return round(time.monotonic() - before, 1)


def s3_outage(topology: Topology, windows: list[Window], seconds: float = 30.0) -> None:
    """The S3 endpoint unreachable for ``seconds`` (connections closed and refused)."""
    with window("s3 outage", windows):
        topology.proxy.block()
        time.sleep(seconds)
        topology.proxy.unblock()
