"""A Spark Connect server on this machine, from the pyspark wheel's own script
(``pyspark/sbin/start-connect-server.sh``): for the tests, a demo, or a laptop's trial of the
remote path. In production the Connect server runs beside the cluster (EMR, Kubernetes) and the
platform only gets its URL (``RESIGHT_SPARK_REMOTE``).

The server runs in the foreground of its own process group (``--wait``), so :meth:`ConnectServer.stop`
ends it and its JVM together and waits until both are gone; its output goes to ``server.log`` in a
directory of its own (with its pid and Spark's log directories).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from resight_platform.engines.spark import BASE_CONF, LOCAL_CONF

__all__ = ["ConnectServer", "connect_script", "free_port", "start_connect_server"]

#: How long a server may take to listen: 8-11 s on an idle 2-core machine, far more under load.
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0


def connect_script() -> Path | None:
    """The wheel's ``start-connect-server.sh``, or None where pyspark or its server is missing."""
    try:
        import pyspark
    except ImportError:
        return None
    script = Path(pyspark.__file__).parent / "sbin" / "start-connect-server.sh"
    return script if script.is_file() else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _group_alive(group: int) -> bool:
    """Whether a process of group ``group`` still runs (a zombie waiting for its parent does not)."""
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not Linux
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _parent, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == group and state != "Z":
            return True
    return False


@dataclass
class ConnectServer:
    """A running local Spark Connect server: its URL for ``RESIGHT_SPARK_REMOTE`` or
    ``EngineResource(spark_remote=...)``; a context manager that stops it."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    started_seconds: float = field(default=0.0)

    @property
    def url(self) -> str:
        return f"sc://{self.host}:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def log_tail(self, characters: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-characters:]
        return ""

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the server and its JVM (SIGTERM to its process group, SIGKILL after ``timeout``),
        wait until no process of it remains and its port is closed, then remove its directory."""
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _group_alive(group) and time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.5)
        if _group_alive(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            while _group_alive(group):
                time.sleep(0.2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        while _listening(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ConnectServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_connect_server(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    master: str = "local[1]",
    conf: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> ConnectServer:
    """Start the wheel's Spark Connect server on ``host:port`` (a free port if None) with
    ``master`` and the platform's session settings (``engines.spark``) under ``conf``; return once
    it accepts connections. A server that exits or does not listen within ``timeout`` seconds is
    stopped and the error carries the end of its log."""
    script = connect_script()
    if script is None:
        raise FileNotFoundError("no Spark Connect server: pyspark (the spark extra) or its sbin/ scripts are missing")
    port = free_port(host) if port is None else port
    directory = Path(tempfile.mkdtemp(prefix="resight-connect-"))
    settings = {
        **BASE_CONF,
        **LOCAL_CONF,
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        **(conf or {}),
    }
    command = ["bash", str(script), "--wait", "--master", master]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    env = {
        **os.environ,
        "SPARK_HOME": str(script.parent.parent),
        "SPARK_LOG_DIR": str(directory / "logs"),
        "SPARK_PID_DIR": str(directory / "pid"),
        "SPARK_LOCAL_IP": host,
    }
    started = time.monotonic()
    with open(directory / "server.log", "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = ConnectServer(host, port, process, directory)
    deadline = started + timeout
    while not _listening(host, port):
        exited = process.poll()
        if exited is not None or time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            reason = f"exited with {exited}" if exited is not None else "is not listening"
            raise RuntimeError(f"the Spark Connect server on {host}:{port} {reason} after {timeout:.0f} s:\n{tail}")
        time.sleep(0.5)
    server.started_seconds = time.monotonic() - started
    return server
