"""Failpoints: parsed from RESIGHT_FAILPOINTS through Settings, armed by the definitions, and a
real process killed or stopped at the chosen hit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resight_platform import faults
from resight_platform.settings import Settings

# A process that arms the points of its argument and passes the point "a_b" three times.
_CHILD = """
import sys
from resight_platform import faults
from resight_platform.settings import Settings
faults.arm(Settings.from_env({"RESIGHT_FAILPOINTS": sys.argv[1]}).failpoints)
for hit in (1, 2, 3):
    faults.failpoint("a", "b")
    print(hit, flush=True)
"""


def _child(spec: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, spec],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_points_are_parsed_from_the_setting() -> None:
    settings = Settings.from_env({"RESIGHT_FAILPOINTS": "silver_write, fact_sales_copy@2 ,dim_product_upsert:pause"})
    assert dict(settings.failpoints) == {
        "silver_write": (1, "kill"),
        "fact_sales_copy": (2, "kill"),
        "dim_product_upsert": (1, "pause"),
    }
    assert Settings.from_env({}).failpoints == ()
    for bad in ("x@0", "x:explode", "@2", "x@two"):
        with pytest.raises(ValueError, match="RESIGHT_FAILPOINTS"):
            Settings.from_env({"RESIGHT_FAILPOINTS": bad})


def test_an_unarmed_point_does_nothing() -> None:
    faults.arm(())
    faults.failpoint("silver", "write")
    assert faults.armed() == {}


def test_a_point_kills_its_process_at_the_chosen_hit() -> None:
    child = _child("a_b@2")
    out, _ = child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert out.split() == ["1"]  # the second pass never printed
    other = _child("c_d")
    out, _ = other.communicate()
    assert other.returncode == 0 and out.split() == ["1", "2", "3"]


def test_a_paused_point_stops_its_process_until_continued() -> None:
    child = _child("a_b:pause")
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 300
    while child.poll() is None and stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, "the child never stopped at its failpoint"
        time.sleep(0.05)
    assert child.poll() is None  # stopped, not ended
    os.kill(child.pid, signal.SIGCONT)
    out, _ = child.communicate()
    assert child.returncode == 0 and out.split() == ["1", "2", "3"]  # once only
