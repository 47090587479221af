"""Issue 17: ``resight onboard suggest`` blind on the sample generator's partners.

Generates a small sample landing zone (``--providers`` partners, ``--days`` days; the generator's
files carry its deliberate bad rows), then for every (provider, feed) in it runs ``suggest`` on the
source's files without its profile, and compares each guess with the packaged registry's profile:

- **columns**: source -> canonical pairs right, wrong (another canonical column), missed (not
  mapped), of the profile's columns present in the files;
- **formats**: the profile fields a feed's files can show (format, delimiter and encoding for CSV,
  datetime format for sales, date format for customers, money format for sales and catalog,
  channel for sales); an encoding guessed ``utf-8`` for an ASCII-only file of a Latin-1 profile
  counts as right (both read it alike), and so does a ``csv.gz`` for a ``csv`` profile;
- **values**: distinct values of mapped columns that the global tables do not know (the
  generator's injected unknowns), and how many of them got a guess.

    .venv/bin/python -m bench.suggest.run                      # 12 providers x 2 days
    .venv/bin/python -m bench.suggest.run --providers 30 --days 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from resight_platform.onboard.columns import load_knowledge
from resight_platform.onboard.sniff import ASCII_ONLY, SampleError, read_sample
from resight_platform.onboard.suggest import suggest
from resight_platform.sample.generator import generate
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, FEEDS, Source, load_registry


def _readable(path: Path) -> bool:
    try:
        read_sample(path)
    except SampleError:
        return False
    return True


def same_encoding(guessed: str, truth: str, ascii_only: bool) -> bool:
    """Whether a guessed encoding reads the files as ``truth`` does: the same codec by name, or
    ``utf-8`` for ASCII-only samples (UTF-8, Latin-1 and Windows-1252 read those alike)."""
    return guessed.replace("_", "-").lower() == truth.lower() or (ascii_only and guessed == "utf-8")


def _format_fields(source: Source, guessed: dict[str, str], ascii_only: bool) -> dict[str, bool]:
    """Each comparable profile field: whether the guess is right."""
    profile = source.profile
    out = {"format": guessed["format"].removesuffix(".gz") == profile.format.removesuffix(".gz")}
    if profile.format.startswith("csv"):
        out["delimiter"] = guessed["delimiter"] == profile.delimiter
        out["encoding"] = same_encoding(guessed["encoding"], profile.encoding, ascii_only)
    if source.feed == "sales":
        out["datetime_format"] = guessed["datetime_format"] == profile.datetime_format
        out["channel"] = guessed.get("channel") == profile.channel
    if source.feed == "customers":
        out["date_format"] = guessed["date_format"] == profile.date_format
    if source.feed in ("sales", "catalog"):
        out["money_format"] = guessed["money_format"] == profile.money_format
    return out


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Run the benchmark; print the table by profile, write and return the per-source rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=12)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args(argv)

    base = load_registry(DEFAULT_REGISTRY_DIR)
    knowledge = load_knowledge(mappings=base.mappings)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "landing"
        generate(str(root), providers=args.providers, days=args.days, start=date(2026, 10, 1), seed=args.seed)
        for (slug, feed), source in sorted(base.sources.items()):
            files = sorted(p for p in (root / slug / feed).glob("*/*") if p.is_file()) if feed in FEEDS else []
            readable = [p for p in files if _readable(p)]  # the generator's broken files are dead letters
            unreadable = len(files) - len(readable)
            files = readable
            if not files:
                continue
            started = time.perf_counter()
            result = suggest(files, f"blind_{slug}", feed, base=base, knowledge=knowledge)
            seconds = time.perf_counter() - started
            truth = dict(source.layout.columns)
            present = {c for s in result.samples for c in s.columns}
            expected = {src: canon for src, canon in truth.items() if src in present}
            got = {m.source: m.canonical for m in result.matches}
            right = sum(1 for src, canon in expected.items() if got.get(src) == canon)
            wrong = sorted(f"{src}->{got[src]}" for src, canon in expected.items() if src in got and got[src] != canon)
            missed = sorted(src for src in expected if src not in got)
            extra = sorted(f"{src}->{canon}" for src, canon in got.items() if src not in expected)
            ascii_only = all(s.encoding is not None and s.encoding.evidence == ASCII_ONLY for s in result.samples)
            guessed = {k: g.value for k, g in result.profile.items()}
            fields = _format_fields(source, guessed, ascii_only)
            rows.append(
                {
                    "provider": slug,
                    "feed": feed,
                    "profile": source.profile.name,
                    "files": len(files),
                    "unreadable_files": unreadable,
                    "records": sum(s.rows for s in result.samples),
                    "seconds": round(seconds, 3),
                    "columns": len(expected),
                    "columns_right": right,
                    "columns_wrong": wrong,
                    "columns_missed": missed,
                    "columns_extra": extra,
                    "formats": len(fields),
                    "formats_right": sum(fields.values()),
                    "formats_wrong": sorted(f"{k}: {guessed.get(k)!r}" for k, ok in fields.items() if not ok),
                    "day_order_undecided": any("undecidable" in g.evidence for g in result.profile.values()),
                    "unknown_values": len(result.unknowns),
                    "unknown_guessed": sum(1 for u in result.unknowns if u.guess is not None),
                    "blockers": result.blockers,
                }
            )
    by_profile: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        total = by_profile[str(row["profile"])]
        total["sources"] += 1
        for key in (
            "columns",
            "columns_right",
            "formats",
            "formats_right",
            "day_order_undecided",
            "unknown_values",
            "unknown_guessed",
        ):
            total[key] += int(row[key])  # type: ignore[call-overload]
    print(
        f"{'profile':<22}{'sources':>8}{'columns right':>16}{'formats right':>16}{'day order undecided':>21}"
        f"{'unknown values (guessed)':>26}"
    )
    for name, total in sorted(by_profile.items()):
        print(
            f"{name:<22}{total['sources']:>8}{total['columns_right']:>9}/{total['columns']:<6}"
            f"{total['formats_right']:>9}/{total['formats']:<6}{total['day_order_undecided']:>21}"
            f"{total['unknown_values']:>18} ({total['unknown_guessed']})"
        )
    for row in rows:
        if row["columns_wrong"] or row["columns_missed"] or row["formats_wrong"]:
            print(
                f"  {row['provider']}/{row['feed']}: wrong {row['columns_wrong']} missed {row['columns_missed']}"
                f" formats {row['formats_wrong']}"
            )
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"per source: {args.out}")
    return rows


if __name__ == "__main__":
    main()
