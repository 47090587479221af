"""The sample generator: determinism, layouts, an independent recount of the manifest, S3, streaming."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import boto3
import numpy as np
import pytest

from resight_platform.sample import Manifest, generate
from resight_platform.sample.catalogue import check_aliases
from resight_platform.sample.generator import default_manifest_url
from resight_platform.sample.manifest import RULES
from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.mappings import load_mappings
from resight_platform.sources.registry import Registry, load_registry
from resight_platform_tests.sample.reference import Recount, read_file, recount

# Every export profile, the CAD distributor, and providers without stores / without customers.
PROVIDERS = [
    "pawmart",
    "petopia",
    "chewyish",
    "petdirect",
    "northpaw_distribution",
    "vetcare_partners",
    "barkbox_market",
    "midwest_pet_supply",
]
DAYS = 3
KEY_REASONS = {
    "bad_key",
    "bad_provider",
    "unknown_feed",
    "bad_date",
    "bad_file_name",
    "unsupported_format",
    "unknown_provider",
    "unknown_source",
}
ALL_REASONS = KEY_REASONS | {"format_mismatch", "unparseable", "missing_columns"}


def subset(slugs: list[str]) -> Registry:
    """The shipped registry restricted to ``slugs``, in that order."""
    full = load_registry()
    return Registry(
        providers={s: full.providers[s] for s in slugs},
        profiles=full.profiles,
        sources={k: v for k, v in full.sources.items() if k[0] in slugs},
    )


@dataclass
class Sample:
    root: Path
    manifest: Manifest
    registry: Registry
    recount: Recount


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    registry = subset(PROVIDERS)
    root = tmp_path_factory.mktemp("sample") / "landing"
    manifest = generate(str(root), providers=len(PROVIDERS), days=DAYS, registry=registry)
    return Sample(root, manifest, registry, recount(root, registry, load_mappings()))


def test_manifest_is_written_beside_the_landing_root(sample: Sample) -> None:
    on_disk = Manifest.from_json((sample.root.parent / "manifest.json").read_bytes())
    assert on_disk == sample.manifest
    assert sample.manifest.providers == PROVIDERS
    assert (sample.manifest.seed, sample.manifest.start, sample.manifest.days) == (7, "2026-10-01", DAYS)


def test_manifest_equals_an_independent_recount(sample: Sample) -> None:
    m, r = sample.manifest, sample.recount
    assert r.problems == []
    assert m.files == {"written": r.written, "dead_letter": len(r.dead_letter)}
    assert m.dead_letter == sorted(r.dead_letter, key=lambda d: d["key"])
    assert m.rows_in == {feed: r.rows_in[feed] for feed in RULES}
    assert m.quarantine == {feed: {k: v for k, v in r.quarantine[feed].items()} for feed in RULES}
    for feed in RULES:  # every data row is either valid or quarantined
        valid = m.sales["lines"] if feed == "sales" else getattr(m, feed)["rows"]
        assert m.rows_in[feed] == valid + sum(m.quarantine[feed].values())
    assert {
        (d["date"], d["provider"]): (d["lines"], Decimal(d["net_amount"])) for d in m.sales["by_date_provider"]
    } == {k: tuple(v) for k, v in r.sales_by.items()}
    assert {s: (v["lines"], Decimal(v["net_amount"])) for s, v in m.sales["by_status"].items()} == {
        s: tuple(v) for s, v in r.by_status.items()
    }
    assert m.sales["lines"] == sum(v[0] for v in r.sales_by.values())
    assert Decimal(m.sales["net_amount"]) == sum(v[1] for v in r.sales_by.values())
    assert m.catalog == {"rows": r.dim_rows["catalog"], "products": len(r.dim_ids["catalog"])}
    assert m.stores == {"rows": r.dim_rows["stores"], "stores": len(r.dim_ids["stores"])}
    assert m.customers == {"rows": r.dim_rows["customers"], "customers": len(r.dim_ids["customers"])}


def test_valid_lines_are_below_every_categorys_ceiling(sample: Sample) -> None:
    """Silver judges a sales line by its product's category's ceilings when gold knows the product,
    else by the ``*`` row; the recount reads the ``*`` row. Every valid line is below the lowest
    ceiling of any category, so the split (and the manifest) is the same whichever is known."""
    ceilings = load_mappings().ceilings.values()
    assert ceilings
    assert 0 < sample.recount.max_quantity <= min(c.max_quantity for c in ceilings)
    assert 0 < sample.recount.max_unit_usd <= min(c.max_unit_price for c in ceilings)


def test_every_rule_and_every_dead_letter_reason_appears(sample: Sample) -> None:
    for feed, rules in RULES.items():
        assert set(sample.manifest.quarantine[feed]) == set(rules), feed
    assert {d["reason"] for d in sample.manifest.dead_letter} == ALL_REASONS
    sales = sample.manifest.sales
    assert 0.005 <= sum(sample.manifest.quarantine["sales"].values()) / sales["lines"] <= 0.012
    shares = {s: v["lines"] / sales["lines"] for s, v in sales["by_status"].items()}
    assert 0.86 < shares["completed"] < 0.94
    assert 0.02 < shares["cancelled"] < 0.06 and 0.04 < shares["returned"] < 0.08


def test_keys_parse_except_the_deliberately_misplaced(sample: Sample) -> None:
    reasons = {d["key"]: d["reason"] for d in sample.manifest.dead_letter}
    for key in files_of(sample.root):
        try:
            parsed = parse_landing_key(key, sample.registry)
        except LandingKeyError as error:
            assert reasons.get(key) == error.code, key
            continue
        assert reasons.get(key) in (None, "format_mismatch", "unparseable", "missing_columns"), key
        assert parsed.provider in PROVIDERS


def test_each_provider_writes_its_profiles_layout(sample: Sample) -> None:
    registry = sample.registry
    dead = {d["key"] for d in sample.manifest.dead_letter}
    seen_formats: Counter[str] = Counter()
    sent: dict[tuple[str, str], set[str]] = {}  # (provider, feed) -> the formats its files came in
    for file in sample.recount.files:
        assert file.key not in dead
        source = file.source
        fmt = parse_landing_key(file.key, registry).format
        # a csv.gz source sends plain .csv every other day; any other its registered format
        assert fmt == source.format or (source.format, fmt) == ("csv.gz", "csv"), file.key
        assert file.columns == list(source.layout.columns), file.key
        seen_formats[fmt] += 1
        sent.setdefault((source.provider, source.feed), set()).add(fmt)
    assert set(seen_formats) == {"csv", "csv.gz", "jsonl", "json", "parquet"}
    assert sent[("vetcare_partners", "sales")] == {"csv", "csv.gz"}
    for key, data in files_of(sample.root).items():
        if key in dead:
            continue
        parsed = parse_landing_key(key, registry)
        registered = registry.source(parsed.provider, parsed.feed)
        assert registered is not None
        if parsed.format == "csv.gz":
            assert data[:2] == b"\x1f\x8b"
            data = gzip.decompress(data)
        elif registered.format == "csv.gz":
            assert data[:2] != b"\x1f\x8b"
        if registered.format == "parquet":
            assert data[:4] == data[-4:] == b"PAR1"
        elif registered.format == "json":
            assert data.startswith(b"[") and isinstance(json.loads(data), list)
        elif registered.profile.encoding == "latin-1":
            text = data.decode("latin-1")
            if parsed.feed == "stores":
                assert "Café" in text and "Caf\xe9".encode("latin-1") in data
                with pytest.raises(UnicodeDecodeError):
                    data.decode("utf-8")
        else:
            data.decode("utf-8")
    # the latin-1 profile's spellings, a currency string and a few aliases, as partners write them
    petopia = sample.root / "petopia" / "sales" / "2026-10-01" / "sales_2026-10-01.csv"
    header, rows = read_file(petopia, registry.sources[("petopia", "sales")])
    assert header[:3] == ["TransID", "Line", "SaleDateTime"]
    assert {r["Status"] for r in rows} >= {"C", "X", "R"}
    assert any(str(r["Price"]).startswith("$") for r in rows)


def test_late_files_resend_lines_of_the_first_file(sample: Sample) -> None:
    late = sample.manifest.late_files
    assert late
    dead = {d["key"] for d in sample.manifest.dead_letter}
    for entry in late:
        key = entry["key"]
        provider, feed, business, name = key.split("/")
        assert feed == "sales" and business == entry["business_date"] < entry["delivered_on"]
        assert name.startswith(f"sales_{entry['delivered_on']}_late.")
        first = f"{provider}/sales/{business}/sales_{business}.{name.split('.', 1)[1]}"
        assert first < key and first not in dead
        files = {f.key: f for f in sample.recount.files}
        seen = {(r["order_id"], str(r["line_no"])) for r in files[first].rows}
        resent = [r for r in files[key].rows if (r["order_id"], str(r["line_no"])) in seen]
        assert len(resent) == 2
        assert all(r in files[first].rows for r in resent)


def test_output_is_byte_identical_and_prefix_stable(sample: Sample, tmp_path: Path) -> None:
    again = generate(str(tmp_path / "again" / "landing"), providers=len(PROVIDERS), days=DAYS, registry=sample.registry)
    assert again == sample.manifest
    assert files_of(tmp_path / "again" / "landing") == files_of(sample.root)
    # a shorter sample holds exactly the same regular files for its dates
    shorter = generate(
        str(tmp_path / "shorter" / "landing"), providers=len(PROVIDERS), days=DAYS - 1, registry=sample.registry
    )
    special = {d["key"] for d in shorter.dead_letter + sample.manifest.dead_letter} | {
        d["key"] for d in shorter.late_files + sample.manifest.late_files
    }
    mine = files_of(sample.root)
    short = {k: v for k, v in files_of(tmp_path / "shorter" / "landing").items() if k not in special}
    assert short and all(mine[k] == v for k, v in short.items())
    # another seed, other data
    generate(str(tmp_path / "other" / "landing"), providers=1, days=1, seed=8, registry=sample.registry)
    key = "pawmart/sales/2026-10-01/sales_2026-10-01.csv"
    assert files_of(tmp_path / "other" / "landing")[key] != mine[key]


def test_weekly_files_hold_the_daily_files_rows_dated_on_the_weeks_last_day(tmp_path: Path) -> None:
    """A weekly partner (the demo's history): one file per feed and week, dated on the week's last
    day, with exactly the rows the seven daily files hold, each line with its own ``ordered_at``."""
    slugs = ["pawmart", "chewyish", "petdirect", "northpaw_distribution"]  # csv, jsonl, json, csv.gz + CAD
    registry = subset(slugs)
    weekly_root, daily_root = tmp_path / "weekly" / "landing", tmp_path / "daily" / "landing"
    weekly = generate(str(weekly_root), providers=len(slugs), days=14, registry=registry, weekly=True)
    generate(str(daily_root), providers=len(slugs), days=14, registry=registry)
    counted = recount(weekly_root, registry, load_mappings(), days_per_file=7)
    assert counted.problems == []  # every line is ordered within the week its file covers
    assert weekly.rows_in == {feed: counted.rows_in[feed] for feed in RULES}
    assert weekly.quarantine == {feed: dict(counted.quarantine[feed]) for feed in RULES}
    assert {
        (d["date"], d["provider"]): (d["lines"], Decimal(d["net_amount"])) for d in weekly.sales["by_date_provider"]
    } == {k: tuple(v) for k, v in counted.sales_by.items()}
    assert {d["date"] for d in weekly.sales["by_date_provider"]} == {"2026-10-07", "2026-10-14"}
    assert {d["reason"] for d in weekly.dead_letter} == ALL_REASONS
    special = {d["key"] for d in weekly.dead_letter} | {d["key"] for d in weekly.late_files}
    assert weekly.late_files and all(d["business_date"] == "2026-10-07" for d in weekly.late_files)

    daily_files = {f.key: f for f in recount(daily_root, registry, load_mappings()).files}
    regular = [f for f in counted.files if f.key not in special]
    assert {f.key.split("/")[2] for f in regular} == {"2026-10-07", "2026-10-14"}
    for file in regular:
        provider, feed, business, name = file.key.split("/")
        end = date.fromisoformat(business)
        days = [(end - timedelta(days=back)).isoformat() for back in range(6, -1, -1)]
        ext = name.split(".", 1)[1]
        parts = [daily_files.get(f"{provider}/{feed}/{day}/{feed}_{day}.{ext}") for day in days]
        rows = [row for part in parts if part is not None for row in part.rows]
        assert rows == file.rows, file.key
    assert len(regular) == 2 * sum(source.active for source in registry.sources.values())  # every feed, weekly


def test_cad_amounts_are_converted_half_up_per_value() -> None:
    from resight_platform.sample.world import World

    rate = load_mappings().usd_per_unit["CAD"]
    cents = np.arange(0, 200_000, dtype=np.int64)
    world = World.__new__(World)
    world.usd_ratio = rate.as_integer_ratio()
    expected = [int((Decimal(int(c)) / 100 * rate).quantize(Decimal("0.01"), ROUND_HALF_UP) * 100) for c in cents]
    assert world.usd_cents(cents).tolist() == expected


def test_cad_provider_writes_cad(sample: Sample) -> None:
    # the recount converts with Decimal; here: the file's amounts are larger than their USD value
    rows = [r for f in sample.recount.files if f.key.startswith("northpaw_distribution/catalog/") for r in f.rows]
    usd_rows = [r for f in sample.recount.files if f.key.startswith("midwest_pet_supply/catalog/") for r in f.rows]
    prices = [r["list_price"] for r in rows if isinstance(r["list_price"], float) and r["list_price"] > 0]
    usd_prices = [r["list_price"] for r in usd_rows if isinstance(r["list_price"], float) and r["list_price"] > 0]
    assert np.median(prices) > 1.2 * np.median(usd_prices)


def test_spellings_resolve_and_bad_requests_fail(tmp_path: Path) -> None:
    check_aliases(load_mappings())
    with pytest.raises(ValueError, match="multiple of 7"):
        generate(str(tmp_path / "landing"), days=10, weekly=True)
    with pytest.raises(ValueError, match="asked for 41 providers but the registry has 40"):
        generate(str(tmp_path / "landing"), providers=41)
    with pytest.raises(ValueError, match="days"):
        generate(str(tmp_path / "landing"), days=0)
    assert default_manifest_url(".resight/landing") == str(Path(".resight").absolute() / "manifest.json")
    assert default_manifest_url("s3://b/p/landing") == "s3://b/p/manifest.json"
    assert default_manifest_url("s3://b/landing/") == "s3://b/manifest.json"
    with pytest.raises(ValueError, match="bucket root"):
        default_manifest_url("s3://b")


def test_writes_to_s3(s3_endpoint: str, s3_bucket_url: str, tmp_path: Path) -> None:
    registry = subset(["petopia", "petdirect", "northpaw_distribution"])
    landing = s3_bucket_url + "/landing"
    manifest = generate(landing, providers=3, days=2, endpoint_url=s3_endpoint, registry=registry)
    local = generate(str(tmp_path / "landing"), providers=3, days=2, registry=registry)
    assert manifest == local
    bucket = s3_bucket_url.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    listed = client.list_objects_v2(Bucket=bucket, Prefix="lake/landing/")
    objects = {o["Key"].removeprefix("lake/landing/"): o["Size"] for o in listed["Contents"]}
    assert objects == {k: len(v) for k, v in files_of(tmp_path / "landing").items()}
    body = client.get_object(Bucket=bucket, Key="lake/manifest.json")["Body"].read()
    assert Manifest.from_json(body) == manifest


_PEAK = """
import resource, sys, tempfile
from resight_platform.sample import generate
with tempfile.TemporaryDirectory() as tmp:
    m = generate(tmp + "/landing", providers=3, days=1, sales_lines_per_day=int(sys.argv[1]))
print(m.rows_in["sales"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _peak(lines: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(lines)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    rows, mb = map(int, out.stdout.split())
    return rows, mb


def test_sales_are_streamed_in_chunks() -> None:
    small_rows, small_mb = _peak(200_000)
    big_rows, big_mb = _peak(2_000_000)
    assert (small_rows, big_rows) == (200_000, 2_000_000)
    assert big_mb - small_mb < 60, (small_mb, big_mb)  # a 2M-line day never sits in memory
