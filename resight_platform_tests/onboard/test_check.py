"""``resight onboard check``: a registry directory judged as a whole, as a person and a script read it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import boto3
import pytest

from resight_platform.cli import main
from resight_platform.onboard.check import run_check
from resight_platform.settings import Settings
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, load_registry
from resight_platform_tests.conftest import AWS_TEST_KEY, AWS_TEST_REGION


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A writable copy of the packaged registry."""
    target = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, target)
    return target


def append(path: Path, line: str) -> int:
    """Append ``line`` to a registry CSV; its row number (the header is row 1)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return len(path.read_text(encoding="utf-8").splitlines())


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["onboard", "check", *args])
    return code, capsys.readouterr().out.splitlines()


def test_the_packaged_registry_is_clean(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESIGHT_REGISTRY_DIR", raising=False)
    code, lines = check(capsys)
    packaged = load_registry()
    assert code == 0
    assert lines == [
        f"{DEFAULT_REGISTRY_DIR}: {len(packaged.providers)} providers, {len(packaged.sources)} sources"
        f" ({len(packaged.active_sources())} active), {len(packaged.profiles)} profiles, 0 value-map rows;"
        f" version {packaged.version}",
        "valid: 0 errors, 0 warnings",
    ]


def test_the_registry_in_use_is_the_default(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    append(registry / "value_maps.csv", "provider,feed,map,alias,value")
    append(registry / "value_maps.csv", "pawmart,,status,SOLD,completed")
    monkeypatch.setenv("RESIGHT_REGISTRY_DIR", str(registry))
    report = run_check(None, Settings.from_env())
    assert report.location == str(registry)
    assert report.counts["value_map_rows"] == 1
    assert report.version == load_registry(registry).version != load_registry().version


def test_every_problem_is_printed_with_its_file_row_and_field(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_zone = append(registry / "providers.csv", "tiny_pets,Tiny Pets,retail,standard_csv,Mars/Olympus,USD")
    quiet = append(registry / "providers.csv", "quiet_pets,Quiet Pets,retail,standard_csv,America/Chicago,USD")
    append(registry / "value_maps.csv", "provider,feed,map,alias,value")
    bad_value = append(registry / "value_maps.csv", "pawmart,,species,kitty,kitten")
    profiles = (registry / "profiles.yaml").read_text(encoding="utf-8")
    (registry / "profiles.yaml").write_text(
        profiles.replace('date_format: "%m/%d/%Y"', 'date_format: "MM/DD/YYYY"', 1), encoding="utf-8"
    )
    bad_format = 1 + profiles[: profiles.index('date_format: "%m/%d/%Y"')].count("\n")  # the key's line

    code, lines = check(capsys, str(registry))

    assert code == 1
    assert f"error   providers.csv:{bad_zone} timezone: unknown timezone 'Mars/Olympus'" in lines
    assert any(
        line.startswith(f"error   value_maps.csv:{bad_value} value: unknown canonical value 'kitten'") for line in lines
    )
    assert (
        f"error   profiles.yaml:{bad_format} profiles.legacy_pos.date_format: 'MM/DD/YYYY' is not a strftime"
        " pattern such as '%m/%d/%Y'" in lines
    )
    assert (
        f"warning providers.csv:{quiet} provider: 'quiet_pets' has no source in sources.csv: each file it sends"
        " is dead-lettered as unknown_source" in lines
    )
    assert lines[-1] == "invalid: 3 errors, 1 warnings"
    # What loaded is counted: the providers whose rows passed (not tiny_pets, nor legacy_pos's 7).
    packaged = load_registry()
    assert f" {len(packaged.providers) + 1 - 7} providers," in lines[-2]


def test_a_valid_registry_is_compared_with_the_one_in_use_partner_by_partner(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    in_use = tmp_path / "in-use"
    shutil.copytree(registry, in_use)
    monkeypatch.setenv("RESIGHT_REGISTRY_DIR", str(in_use))
    code, lines = check(capsys, str(registry))
    assert (code, lines[-1]) == (0, "valid: 0 errors, 0 warnings")
    assert len(lines) == 2  # the same files as in use: nothing to compare

    append(registry / "providers.csv", "tiny_pets,Tiny Pets,retail,standard_csv,America/Chicago,USD")
    append(registry / "sources.csv", "tiny_pets,sales,,24,true")
    (registry / "value_maps.csv").write_text("provider,feed,map,alias,value\npawmart,,status,SOLD,completed\n")
    rows = (registry / "providers.csv").read_text(encoding="utf-8").splitlines()
    (registry / "providers.csv").write_text("\n".join(r for r in rows if not r.startswith("petopia,")) + "\n")
    sources = (registry / "sources.csv").read_text(encoding="utf-8").splitlines()
    (registry / "sources.csv").write_text("\n".join(r for r in sources if not r.startswith("petopia,")) + "\n")

    code, lines = check(capsys, str(registry), "--json")
    changes = json.loads("\n".join(lines))["changes"]
    assert code == 0
    assert changes == {
        "against": str(in_use),
        "version": load_registry(in_use).version,
        "new": ["tiny_pets"],
        "changed": ["pawmart"],
        "removed": ["petopia"],
    }
    _, lines = check(capsys, str(registry))
    assert lines[-2] == (
        f"against {in_use} (version {load_registry(in_use).version}): partners 1 new (tiny_pets),"
        " 1 changed (pawmart), 1 removed (petopia)"
    )


def test_warnings_alone_pass_unless_strict(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    append(registry / "providers.csv", "quiet_pets,Quiet Pets,retail,standard_csv,America/Chicago,USD")
    code, lines = check(capsys, str(registry))
    assert (code, lines[-1]) == (0, "valid: 0 errors, 1 warnings")
    code, lines = check(capsys, str(registry), "--strict")
    assert code == 1


def test_json_for_machines(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = append(registry / "sources.csv", "pawmart,sales,,24,true")  # listed twice
    code, lines = check(capsys, str(registry), "--json")
    report = json.loads("\n".join(lines))
    assert code == 1
    assert report["ok"] is False
    assert report["errors"] == [
        {"file": "sources.csv", "row": row, "field": "feed", "reason": "pawmart/sales is listed twice"}
    ]
    assert report["warnings"] == []
    assert report["version"] == run_check(str(registry), Settings.from_env({})).version
    assert set(report["counts"]) == {"providers", "sources", "active_sources", "profiles", "value_map_rows"}
    assert report["changes"] is None  # an invalid registry is not compared


def test_a_missing_directory_is_an_error_of_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onboard", "check", str(tmp_path / "nowhere")]) == 2
    assert "no such registry directory" in capsys.readouterr().err


def test_a_registry_on_s3_has_the_version_of_the_same_files_on_disk(
    registry: Path, s3_bucket_url: str, s3_endpoint: str
) -> None:
    bucket = s3_bucket_url.removeprefix("s3://").split("/")[0]
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=AWS_TEST_REGION,
        aws_access_key_id=AWS_TEST_KEY,
        aws_secret_access_key=AWS_TEST_KEY,
    )
    for path in registry.rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=f"registry/{path.relative_to(registry).as_posix()}", Body=path.read_bytes()
            )
    settings = Settings.from_env({"AWS_ENDPOINT_URL": s3_endpoint})
    on_s3 = run_check(f"s3://{bucket}/registry", settings)
    assert (on_s3.errors, on_s3.version) == ((), run_check(str(registry), settings).version)
    assert on_s3.location == f"s3://{bucket}/registry"


# --- docs/onboarding.md's worked example ---------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "onboarding.md"
_VERSION = re.compile(r"version [0-9a-f]{12}")


def documented_outputs() -> list[list[str]]:
    """The output lines of each ``$ resight onboard check my-registry`` in the Check section."""
    section = DOCS.read_text(encoding="utf-8").split("## Check:", 1)[1].split("\n## ", 1)[0]
    outputs = []
    for block in section.split("$ resight onboard check my-registry\n")[1:]:
        outputs.append(block.split("\n$ ", 1)[0].split("\n```", 1)[0].splitlines())
    return outputs


def test_the_documented_example_prints_what_the_docs_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESIGHT_REGISTRY_DIR", raising=False)  # compared with the packaged registry
    shutil.copytree(DEFAULT_REGISTRY_DIR, "my-registry")
    registry = Path("my-registry")
    append(registry / "providers.csv", "tiny_pets,Tiny Pets,retail,tiny_pos,America/Chicago,USD")
    append(registry / "sources.csv", "tiny_pets,sales,,24,true")
    append(registry / "providers.csv", "quiet_paws,Quiet Paws,retail,standard_csv,America/Denver,USD")
    profile = (
        '\n  tiny_pos:\n    format: csv\n    datetime_format: "DD/MM/YYYY HH:mm"\n    feeds:\n      sales:\n'
        "        columns: {Ticket: order_id, Line: line_no, When: ordered_at, Item: sku, Qty: quantity,\n"
        "                  Price: unit_price, Status: status, Status: channel}\n"
    )
    with (registry / "profiles.yaml").open("a", encoding="utf-8") as handle:
        handle.write(profile)
    (registry / "value_maps.csv").write_text("provider,feed,map,alias,value\ntiny_pets,,status,SOLD,sold\n")
    broken, fixed = documented_outputs()

    code, lines = check(capsys, "my-registry")
    assert code == 1
    assert [_VERSION.sub("version -", line) for line in lines] == [_VERSION.sub("version -", line) for line in broken]

    text = (registry / "profiles.yaml").read_text(encoding="utf-8")
    text = text.replace('"DD/MM/YYYY HH:mm"', '"%d/%m/%Y %H:%M"').replace("Status: channel", "Till: channel")
    (registry / "profiles.yaml").write_text(text, encoding="utf-8")
    (registry / "value_maps.csv").write_text("provider,feed,map,alias,value\ntiny_pets,,status,SOLD,completed\n")
    code, lines = check(capsys, "my-registry")
    assert code == 0
    assert [_VERSION.sub("version -", line) for line in lines] == [_VERSION.sub("version -", line) for line in fixed]
