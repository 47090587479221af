"""Generate a landing zone of partner files, exactly as partners would send them, plus a manifest.

``generate`` writes, for every selected provider, registered feed and business date, the files a
partner sends at ``{provider}/{feed}/{YYYY-MM-DD}/{file name}`` in its profile's layout (columns,
format, delimiter, encoding, date and money formats, spellings), with a small seeded share of
deliberately bad rows (one contract rule each), a few bad files (one dead-letter reason each) and
late files. A partner whose source is registered as ``csv.gz`` sends plain ``.csv`` on every other
day (the file's extension, not the registry, says its format). The manifest is the ground truth the
pipeline is checked against.

Output is byte-identical for the same arguments: every file draws from its own random generator
keyed on (seed, provider, feed, date, ...). Sales are generated and streamed in chunks, so a
20M-line day never sits in memory.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from resight_platform.io.storage import ObjectStore, open_store
from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.registry import FEEDS, Registry, Source, load_registry

from .catalogue import SPECIES, check_aliases
from .manifest import CATALOG_RULES, CUSTOMERS_RULES, SALES_RULES, STORES_RULES, Manifest, Tally
from .render import (
    FormatClass,
    Sink,
    apply_overrides,
    catalog_frame,
    customers_frame,
    format_class,
    id_parts,
    open_sink,
    sales_frame,
    stores_frame,
    to_source,
)
from .world import EPOCH, SPECIES_WEIGHTS, SalesBlock, World, pick, rng_for

__all__ = ["CHUNK_ROWS", "Manifest", "default_manifest_url", "generate"]

CHUNK_ROWS = 50_000
BAD_SHARE = 0.006  # of sales lines, at least one per rule in files of 1,000+ lines
LATE_SHARE = 0.08  # size of a late file relative to the day's volume
GHOST_PROVIDER = "ghostpets"

Progress = Callable[[str], None]


def generate(
    out_url: str,
    *,
    providers: int = 30,
    days: int = 14,
    start: date = date(2026, 10, 1),
    seed: int = 7,
    sales_lines_per_day: int | None = None,
    manifest_url: str | None = None,
    endpoint_url: str | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
    provider_slugs: Sequence[str] | None = None,
    volume: float = 1.0,
    weekly: bool = False,
) -> Manifest:
    """Write a sample landing zone under ``out_url`` (local dir or ``s3://``) and its manifest.

    Uses the first ``providers`` providers of the registry (providers.csv order) over ``days``
    business dates from ``start``. ``sales_lines_per_day`` fixes the total sales rows of each day
    across providers (default: each provider's own volume, a few hundred to ~2,000 a day). The
    manifest goes to ``manifest_url`` (default: ``manifest.json`` beside the landing root).
    Files already under the root are left alone: generate into an empty root.

    ``provider_slugs`` picks providers by name instead of the first ``providers``; ``volume``
    scales every provider's own daily volume (``0.1`` for a long, thin history). Demand follows
    each category's yearly season and a mild trend (``world.season_factor``).

    ``weekly``: every feed is delivered once a week, one file per seven days dated on the week's last
    day (its business date), holding the rows the seven daily files would hold, each line with its
    own ``ordered_at``; ``days`` must then be a multiple of 7.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if weekly and days % 7:
        raise ValueError(f"a weekly sample covers whole weeks: days must be a multiple of 7, got {days}")
    if sales_lines_per_day is not None and sales_lines_per_day < 0:
        raise ValueError(f"sales_lines_per_day must be non-negative, got {sales_lines_per_day}")
    if volume <= 0:
        raise ValueError(f"volume must be positive, got {volume}")
    registry = registry or load_registry()
    registered = list(registry.providers)
    if provider_slugs is not None:
        unknown = sorted(set(provider_slugs) - set(registered))
        if unknown or not provider_slugs:
            raise ValueError(f"provider_slugs must name registered providers; unknown: {unknown}")
        registered = [slug for slug in registered if slug in set(provider_slugs)]
        providers = len(registered)
    if not 1 <= providers <= len(registered):
        raise ValueError(
            f"asked for {providers} providers but the registry has {len(registered)} "
            f"(choose 1..{len(registered)}, or pass a larger registry)"
        )
    manifest_url = manifest_url or default_manifest_url(out_url)
    mappings = registry.mappings
    check_aliases(mappings)
    dates = [start + timedelta(days=i) for i in range(days)]
    ranks: dict[str, int] = {}
    seen: Counter[str] = Counter()
    for slug, provider in registry.providers.items():
        ranks[slug] = seen[provider.profile]
        seen[provider.profile] += 1
    worlds = []
    for slug in registered[:providers]:
        provider = registry.providers[slug]
        sources = {feed: s for (p, feed), s in sorted(registry.sources.items()) if p == slug and s.active}
        worlds.append(
            World(
                seed=seed,
                provider=provider,
                profile=registry.profiles[provider.profile],
                sources=sources,
                dates=dates,
                mappings=mappings,
                profile_rank=ranks[slug],
            )
        )
    store = open_store(out_url, endpoint_url=endpoint_url)
    with tempfile.TemporaryDirectory(prefix="resight-sample-") as tmp:
        writer = _Writer(
            seed=seed,
            registry=registry,
            store=store,
            tmp=Path(tmp),
            worlds=worlds,
            progress=progress or (lambda _message: None),
            cadence=7 if weekly else 1,
        )
        writer.run(_allotments(worlds, days, sales_lines_per_day, volume))
    manifest = writer.tally.manifest(
        seed=seed, start=start.isoformat(), days=days, providers=[w.provider.provider for w in worlds]
    )
    directory, name = _split_url(manifest_url)
    open_store(directory, endpoint_url=endpoint_url).write_bytes(name, manifest.to_json().encode("utf-8"))
    writer.progress(f"manifest written to {manifest_url}")
    return manifest


def default_manifest_url(out_url: str) -> str:
    """``manifest.json`` in the parent of the landing root (``.resight/landing`` -> ``.resight/``)."""
    if out_url.startswith("s3://"):
        bucket, _, prefix = out_url[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        if not prefix:
            raise ValueError(f"landing root {out_url!r} is a bucket root; pass manifest_url explicitly")
        parent = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        return f"s3://{bucket}/{parent + '/' if parent else ''}manifest.json"
    path = Path(out_url.removeprefix("file://")).expanduser().absolute()
    return str(path.parent / "manifest.json")


def _split_url(url: str) -> tuple[str, str]:
    if url.startswith("s3://"):
        directory, _, name = url.rpartition("/")
        if directory == "s3:/":
            raise ValueError(f"manifest_url {url!r} names no bucket")
        return directory, name
    path = Path(url.removeprefix("file://")).expanduser().absolute()
    return str(path.parent), path.name


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _allotments(worlds: list[World], days: int, total: int | None, volume: float = 1.0) -> list[list[int]]:
    """Sales rows per [day][provider]: each provider's own volume (x ``volume``), or ``total`` split by it."""
    out = []
    for day in range(days):
        default = [w.default_lines(day, volume) if "sales" in w.sources else 0 for w in worlds]
        if total is None:
            out.append(default)
            continue
        weight = sum(default)
        if weight == 0:
            out.append(default)
            continue
        shares = [total * d // weight for d in default]
        remainders = sorted(range(len(default)), key=lambda i: (-(total * default[i] % weight), i))
        for i in remainders[: total - sum(shares)]:
            shares[i] += 1
        out.append(shares)
    return out


# ------------------------------------------------------------------------------------ bad values
_MISSING: dict[FormatClass, list[object]] = {"csv": [None, "  "], "json": [None, ""], "parquet": [None]}
_BAD_INT: dict[str, dict[FormatClass, list[object]]] = {
    "line_no": {"csv": ["0", "-1", "A", "1.5"], "json": [0, -1, "one"], "parquet": [0, -1]},
    "quantity": {"csv": ["0", "-2", "two", "1.5"], "json": [0, -2, "two"], "parquet": [0, -2]},
    "pack_size": {"csv": ["0", "-1", "large"], "json": [0, -1, "large"], "parquet": [0.0, -1.0]},
}


def _impossible(fmt: str) -> str:
    """A value in strftime pattern ``fmt`` with month 13 and day 45."""
    for directive, value in (("%Y", "2026"), ("%m", "13"), ("%d", "45"), ("%H", "10"), ("%M", "00"), ("%S", "00")):
        fmt = fmt.replace(directive, value)
    return fmt


def _bad_datetimes(fmt: str) -> list[object]:
    if fmt == "iso":
        return ["2026-13-45T10:00:00", "N/A", "31/31/2026 10:00"]
    if fmt == "epoch_ms":
        return ["N/A", "yesterday"]
    return [_impossible(fmt), "N/A"]


def _bad_money(source: Source, cls: FormatClass, column: str) -> list[object]:
    if cls == "parquet":
        return [-1.0] if column == "discount" else [None, -4.99]
    try:
        "€".encode(source.profile.encoding)
        garbled = "12,99€"
    except UnicodeEncodeError:
        garbled = "12,99 EUR"
    money = source.profile.money_format
    if money == "cents":
        negative: object = -499 if cls == "json" else "-499"
        if column == "discount":
            return [-100 if cls == "json" else "-100", "N/A"]
        return ["N/A", negative, None, garbled]
    if column == "discount":
        return ["N/A"] if money == "currency" else ["N/A", "-1.00"]
    return ["N/A", garbled, None] if money == "currency" else ["N/A", garbled, "-4.99", None]


#: The text column a row breaking ``unstorable_value`` carries its NUL in, per feed.
_NUL_COLUMN = {"sales": "sku", "catalog": "product_name", "stores": "store_id", "customers": "customer_id"}


def _before_history(source: Source, cls: FormatClass) -> object:
    """A time on 1 January 1900, 10:00, as ``source`` writes an ``ordered_at``."""
    fmt = source.profile.datetime_format
    if cls == "parquet":
        return datetime(1900, 1, 1, 10, 0, tzinfo=UTC)
    if fmt == "epoch_ms":
        return str(
            int((datetime(1900, 1, 1, 10, 0, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1000
        )
    if fmt == "iso":
        return "1900-01-01T10:00:00"
    return datetime(1900, 1, 1, 10, 0).strftime(fmt)


def _over_price(source: Source, cls: FormatClass) -> object:
    """A unit or list price of 99,999.99 (above every ceiling, in any currency of the registry)."""
    if cls == "parquet":
        return 99999.99
    money = source.profile.money_format
    if money == "cents":
        return 9999999 if cls == "json" else "9999999"
    return "$99,999.99" if money == "currency" else "99999.99"


def bad_value(rule: str, feed: str, source: Source, rng: np.random.Generator) -> tuple[str, object]:
    """The (canonical column, value) that makes a row break ``rule`` and nothing else."""
    cls = format_class(source.format)
    columns = set(source.layout.columns.values())

    def choose(options: list[object]) -> object:
        return options[int(rng.integers(len(options)))]

    if rule == "unstorable_value":
        # Unique: a NUL in a key column must not make two broken rows share a key.
        return _NUL_COLUMN[feed], f"NUL\x00{int(rng.integers(10**12)):012d}"
    if rule == "before_history_start":
        return "ordered_at", _before_history(source, cls)
    if rule == "quantity_over_ceiling":
        return "quantity", 2_147_483_647 if cls != "csv" else "2147483647"
    if rule == "price_over_ceiling":
        return ("list_price" if feed == "catalog" else "unit_price"), _over_price(source, cls)

    if rule.startswith("missing_"):
        return rule.removeprefix("missing_"), choose(_MISSING[cls])
    if rule == "bad_line_no":
        return "line_no", choose(_BAD_INT["line_no"][cls])
    if rule == "bad_quantity":
        return "quantity", choose(_BAD_INT["quantity"][cls])
    if rule == "bad_pack_size":
        return "pack_size", choose(_BAD_INT["pack_size"][cls])
    if rule == "unparseable_date":
        if feed == "customers":
            return "signup_date", choose([_impossible(source.profile.date_format), "N/A"])
        return "ordered_at", choose(_bad_datetimes(source.profile.datetime_format))
    if rule == "unparseable_price":
        if feed == "catalog":
            return "list_price", choose(_bad_money(source, cls, "list_price"))
        column = "discount" if "discount" in columns and rng.random() < 0.3 else "unit_price"
        return column, choose(_bad_money(source, cls, column))
    if rule == "unknown_status":
        return "status", choose(["pending", "ON HOLD", "backordered"])
    if rule == "unknown_channel":
        return "channel", choose(["kiosk", "phone", "drive-thru"])
    if rule == "unknown_species":
        return ("species" if feed == "catalog" else "pet_species"), choose(["dragon", "Unicorn"])
    if rule == "unknown_unit":
        return "pack_unit", choose(["bushel", "crate", "bag"])
    if rule == "invalid_state":
        return "state", choose(["ZZ", "XX", "QQ"])
    raise ValueError(f"no bad value for rule {rule!r}")


def sent_as(source: Source, day: int) -> Source:
    """``source`` in the format its file of day ``day`` (0-based) is sent in: a ``csv.gz`` source
    sends plain ``.csv`` on odd days, any other its registered format."""
    if source.format == "csv.gz" and day % 2 == 1:
        return dataclasses.replace(source, format="csv")
    return source


def rules_for(source: Source) -> list[str]:
    """The quarantine rules this source's files can break (given its columns and format)."""
    columns = set(source.layout.columns.values())
    parquet = format_class(source.format) == "parquet"
    needs = {
        "unknown_channel": "channel",
        "unknown_unit": "pack_unit",
        "bad_pack_size": "pack_size",
        "invalid_state": "state",
    }
    rules = {"sales": SALES_RULES, "catalog": CATALOG_RULES, "stores": STORES_RULES, "customers": CUSTOMERS_RULES}[
        source.feed
    ]
    out = []
    for rule in rules:
        if rule in needs and needs[rule] not in columns:
            continue
        if rule == "unknown_species" and source.feed == "customers" and "pet_species" not in columns:
            continue
        if rule == "unparseable_date" and source.feed == "sales" and parquet:
            continue  # a native timestamp column cannot hold an unparseable value
        out.append(rule)
    return out


def _permutation(rng: np.random.Generator, n_valid: int, n_extra: int, n_dup: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order: valid rows in order, extra rows anywhere, duplicates somewhere after their original.

    Returns (permutation over valid+extra+dup rows, the original index of each duplicate).
    """
    originals = rng.integers(0, n_valid, size=n_dup) if n_dup else np.zeros(0, dtype=np.int64)
    keys = np.concatenate(
        [
            np.arange(n_valid, dtype=float),
            rng.uniform(0, max(n_valid, 1), size=n_extra),
            originals + (n_valid - originals) * rng.uniform(0.01, 0.99, size=n_dup),
        ]
    )
    index = np.concatenate([np.arange(n_valid + n_extra), originals]).astype(np.int64)
    return index[np.argsort(keys, kind="stable")], originals


# ---------------------------------------------------------------------------------------- writer
@dataclass
class _Late:
    day: int
    delivered: int


class _Writer:
    def __init__(
        self,
        *,
        seed: int,
        registry: Registry,
        store: ObjectStore,
        tmp: Path,
        worlds: list[World],
        progress: Progress,
        cadence: int = 1,
    ) -> None:
        self.seed = seed
        self.registry = registry
        self.store = store
        self.tmp = tmp
        self.worlds = worlds
        self.progress = progress
        self.tally = Tally()
        self.dates = worlds[0].dates
        #: Days per delivery: 1 (a file a day) or 7 (a file a week, dated on its last day).
        self.cadence = cadence

    def business(self, day: int) -> int:
        """The day whose date the file holding ``day``'s rows carries: the last day of its delivery."""
        return day - day % self.cadence + self.cadence - 1

    # ------------------------------------------------------------------------------ plumbing
    def _put(self, key: str, path: Path, *, expect: str | None = None) -> None:
        """Upload ``path`` as ``key``; a good key must parse, a bad one must fail with ``expect``."""
        try:
            parse_landing_key(key, self.registry)
            code = None
        except LandingKeyError as error:
            code = error.code
        key_reason = expect if expect not in ("format_mismatch", "unparseable", "missing_columns") else None
        if code != key_reason:
            raise RuntimeError(f"sample key {key!r} parses as {code!r}, expected {key_reason!r}")
        self.store.write_file(key, path)
        path.unlink()
        self.tally.written += 1
        if expect is not None:
            self.tally.dead_letter.append({"key": key, "reason": expect})

    def _path(self, key: str) -> Path:
        return self.tmp / key.replace("/", "__").replace(" ", "_")

    def run(self, allotments: list[list[int]]) -> None:
        late = self._plan_late(allotments)
        for w_index, world in enumerate(self.worlds):
            for first in range(0, len(self.dates), self.cadence):
                days = list(range(first, first + self.cadence))
                for feed in FEEDS:
                    if feed not in world.sources:
                        continue
                    if feed == "sales":
                        self._sales_delivery(world, days, [allotments[day][w_index] for day in days], late)
                    elif feed in ("catalog", "stores"):
                        for day in days:
                            if day in world.deliveries:
                                self._dimension(world, day, feed)
                    elif feed == "customers":
                        source = world.sources["customers"]
                        self._write(world, source, days[-1], [self._customers(world, day) for day in days])
        self._bad_files()

    def _sales_delivery(
        self, world: World, days: list[int], lines: list[int], late: dict[tuple[str, int], _Late]
    ) -> None:
        """The sales file of one delivery (``days``, dated on the last), and its late file if planned."""
        business = days[-1]
        plan = late.get((world.provider.provider, business))
        if not any(n > 0 for n in lines):
            return
        source = world.sources["sales"]
        ds = self.dates[business].isoformat()
        sent = sent_as(source, business)
        key = f"{world.provider.provider}/sales/{ds}/sales_{ds}.{sent.format}"
        path = self._path(key)
        sink = open_sink(path, sent)
        kept = None
        for day, n in zip(days, lines, strict=True):
            if n <= 0:
                continue
            kept = self._sales(world, day, n, sink, keep=2 if plan and day == business else 0)
            self.progress(f"{world.provider.provider} {self.dates[day].isoformat()}: {n:,} sales lines")
        sink.close()
        self._put(key, path)
        if plan and kept is not None and kept.height:
            self._late_sales(world, business, plan.delivered, kept, lines[-1])

    def _plan_late(self, allotments: list[list[int]]) -> dict[tuple[str, int], _Late]:
        """Late files, keyed on (provider, business day): a second file of a delivery, one to three
        deliveries later."""
        deliveries = len(self.dates) // self.cadence
        if deliveries < 2:
            return {}
        rng = rng_for(self.seed, "late-files")
        candidates = [w for w in self.worlds if "sales" in w.sources]
        count = min(len(candidates), max(1, round(0.1 * len(self.worlds))))
        plan: dict[tuple[str, int], _Late] = {}
        last = self.cadence - 1
        for i in rng.choice(len(candidates), size=count, replace=False):
            world = candidates[int(i)]
            delivery = int(rng.integers(0, deliveries - 1))
            delivered = delivery + int(rng.integers(1, min(3, deliveries - 1 - delivery) + 1))
            day = delivery * self.cadence + last
            w_index = self.worlds.index(world)
            if allotments[day][w_index] > 0:
                plan[(world.provider.provider, day)] = _Late(day, delivered * self.cadence + last)
        return plan

    def _write(self, world: World, source: Source, business: int, frames: list[pl.DataFrame]) -> None:
        """One file of ``source`` dated on day ``business``, holding ``frames`` (as the partner writes them)."""
        ds = self.dates[business].isoformat()
        sent = sent_as(source, business)
        key = f"{world.provider.provider}/{source.feed}/{ds}/{source.feed}_{ds}.{sent.format}"
        path = self._path(key)
        sink = open_sink(path, sent)
        for frame in frames:
            sink.write(frame)
        sink.close()
        self._put(key, path)

    # ---------------------------------------------------------------------------------- sales
    def _sales(self, world: World, day: int, n_total: int, sink: Sink, keep: int = 0) -> pl.DataFrame | None:
        """The day's sales lines into ``sink``, in chunks; returns ``keep`` valid rows for a late resend."""
        source = world.sources["sales"]
        cls = format_class(source.format)
        slug, ds = world.provider.provider, self.dates[day].isoformat()
        rules = rules_for(source)
        n_bad = min(n_total // 10, max(round(n_total * BAD_SHARE), min(len(rules), n_total // 100)))
        offset = int(rng_for(self.seed, slug, "sales", ds).integers(len(rules)))
        chunks = max(1, math.ceil(n_total / CHUNK_ROWS))
        valid_split, bad_split = _split(n_total - n_bad, chunks), _split(n_bad, chunks)
        seq, bad_done, kept = 1, 0, None
        for c in range(chunks):
            rng = rng_for(self.seed, slug, "sales", ds, "chunk", c)
            rules_here = [rules[(offset + bad_done + t) % len(rules)] for t in range(bad_split[c])]
            valid = world.sales_block(day, valid_split[c], rng, ns=1, seq_start=seq)
            if len(valid):
                seq = int(valid.order_seq[-1]) + 1
            frame, perm = self._sales_chunk(world, day, valid, rules_here, rng, bad_done + 1, cls)
            bad_done += bad_split[c]
            sink.write(to_source(frame[perm], source))
            if c == 0 and keep and len(valid) >= keep:
                rows = np.sort(rng.choice(len(valid), size=keep, replace=False))
                kept = to_source(frame[rows], source)
        return kept

    def _sales_chunk(
        self,
        world: World,
        day: int,
        valid: SalesBlock,
        rules: list[str],
        rng: np.random.Generator,
        bad_seq: int,
        cls: FormatClass,
    ) -> tuple[pl.DataFrame, np.ndarray]:
        source = world.sources["sales"]
        broken = [r for r in rules if r != "duplicate"]
        n_dup = len(rules) - len(broken)
        template = world.sales_block(day, len(broken), rng, ns=9, seq_start=bad_seq, single_line=True)
        future = np.array([i for i, r in enumerate(broken) if r == "future_date"], dtype=np.int64)
        if len(future):
            world.shift_days(template, future, rng.integers(400, 800, size=len(future)))
        frame = sales_frame(world, SalesBlock.concat([valid, template]), cls, day)
        n_valid = len(valid)
        overrides = [
            (n_valid + i, *bad_value(r, "sales", source, rng)) for i, r in enumerate(broken) if r != "future_date"
        ]
        frame = apply_overrides(frame, overrides, cls)
        perm, _ = _permutation(rng, n_valid, len(broken), n_dup)
        self._count_sales(world, day, valid)
        self.tally.rows_in["sales"] += len(perm)
        self.tally.quarantine["sales"].update(rules)
        return frame, perm

    def _count_sales(self, world: World, day: int, block: SalesBlock) -> None:
        net = block.qty * world.usd_cents(block.unit_cents) - world.usd_cents(block.disc_cents)
        self.tally.add_sales(self.dates[self.business(day)].isoformat(), world.provider.provider, block.status, net)

    def _late_sales(self, world: World, day: int, delivered: int, kept: pl.DataFrame, n_day: int) -> None:
        """A second sales file for ``day`` delivered later: new lines plus exact resends of ``kept``."""
        source = world.sources["sales"]
        slug, ds = world.provider.provider, self.dates[day].isoformat()
        on = self.dates[delivered].isoformat()
        sent = sent_as(source, day)
        key = f"{slug}/sales/{ds}/sales_{on}_late.{sent.format}"
        rng = rng_for(self.seed, slug, "sales", ds, "late")
        block = world.sales_block(day, max(10, round(n_day * LATE_SHARE)), rng, ns=2, seq_start=1)
        frame = to_source(sales_frame(world, block, format_class(source.format), day), source)
        perm, _ = _permutation(rng, frame.height, kept.height, 0)
        out = pl.concat([frame, kept])[perm]
        path = self._path(key)
        sink = open_sink(path, sent)
        sink.write(out)
        sink.close()
        self._count_sales(world, day, block)
        self.tally.rows_in["sales"] += out.height
        self.tally.quarantine["sales"]["duplicate"] += kept.height
        self.tally.late_files.append({"key": key, "business_date": ds, "delivered_on": on})
        self._put(key, path)

    # ----------------------------------------------------------------------------- dimensions
    def _fresh_ids(self, fmt: str, world: World, serial: int, count: int) -> list[str | None]:
        """Ids no valid row uses: the top tenth of the id space, ``serial`` keeps files apart."""
        prefix, width = id_parts(fmt, world.code)
        base = 9 * 10 ** (width - 1) + serial * 20
        return [f"{prefix}{base + t:0{width}d}" for t in range(count)]

    def _dim_rows(
        self,
        source: Source,
        frame: pl.DataFrame,
        n_valid: int,
        rules: list[str],
        rng: np.random.Generator,
    ) -> pl.DataFrame:
        """A dimension delivery's rows as the partner writes them: ``n_valid`` valid rows, then one
        broken row per rule, shuffled."""
        broken = [r for r in rules if r != "duplicate"]
        cls = format_class(source.format)
        overrides = [(n_valid + i, *bad_value(r, source.feed, source, rng)) for i, r in enumerate(broken)]
        frame = apply_overrides(frame, overrides, cls)
        perm, _ = _permutation(rng, n_valid, len(broken), len(rules) - len(broken))
        self.tally.rows_in[source.feed] += len(perm)
        self.tally.quarantine[source.feed].update(rules)
        return to_source(frame[perm], source)

    def _dimension(self, world: World, day: int, feed: str) -> None:
        source = world.sources[feed]
        cls = format_class(source.format)
        slug, ds = world.provider.provider, self.dates[day].isoformat()
        rng = rng_for(self.seed, slug, feed, ds)
        rules = rules_for(source)
        broken = [r for r in rules if r != "duplicate"]
        serial = world.deliveries.index(day)
        if feed == "catalog":
            valid = np.flatnonzero(world.product_intro <= day)
            with_pack = valid[[world.pack_size[i] is not None for i in valid]]
            template = rng.choice(with_pack, size=len(broken))
            ids: list[str | None] = [world.skus[i] for i in valid]
            fresh = self._fresh_ids(world.style.sku_format, world, serial, len(broken))
            frame = catalog_frame(world, np.concatenate([valid, template]), ids + fresh, cls)
        else:
            valid = np.flatnonzero(world.store_intro <= day)
            template = rng.choice(valid, size=len(broken))
            ids = [world.store_ids[i] for i in valid]
            fresh = self._fresh_ids(world.style.store_format, world, serial, len(broken))
            frame = stores_frame(world, np.concatenate([valid, template]), ids + fresh, cls)
        self.tally.add_dim(feed, slug, [i for i in ids if i is not None])
        self._write(world, source, self.business(day), [self._dim_rows(source, frame, len(valid), rules, rng)])

    def _customers(self, world: World, day: int) -> pl.DataFrame:
        """The customers first delivered on ``day``, as the partner writes them."""
        source = world.sources["customers"]
        cls = format_class(source.format)
        slug, d = world.provider.provider, self.dates[day]
        rng = rng_for(self.seed, slug, "customers", d.isoformat())
        lo, hi = world.customers_on(day)
        n = hi - lo
        signup = np.full(n, (d - EPOCH).days, dtype=np.int64)
        if day == 0:
            first = (d - EPOCH).days
            backlog = world.customer_backlog
            signup[:backlog] = np.sort(rng.integers(first - 5 * 365, first, size=backlog))
        rules = rules_for(source)
        if day > 0:
            offset = int(rng.integers(len(rules)))
            rules = [rules[(offset + k) % len(rules)] for k in range(2)]
        broken = [r for r in rules if r != "duplicate"]
        total = n + len(broken)
        states, species = self._customer_traits(world, day, total, rng)
        ids = [world.customer_id(i) for i in range(lo, hi)]
        fresh = self._fresh_ids(world.style.customer_format, world, day, len(broken))
        signup = np.concatenate([signup, np.full(len(broken), (d - EPOCH).days, dtype=np.int64)])
        frame = customers_frame(world, [*ids, *fresh], signup, states, species, cls)
        self.tally.add_dim("customers", slug, ids)
        return self._dim_rows(source, frame, n, rules, rng)

    def _customer_traits(
        self, world: World, day: int, n: int, rng: np.random.Generator
    ) -> tuple[list[str | None], list[str | None]]:
        open_stores = np.flatnonzero(world.store_intro <= day)
        if "stores" in world.sources and len(open_stores):
            picks = open_stores[pick(world.store_cdf(day), rng.random(n))]
            states: list[str | None] = [world.store_state[int(i)] for i in picks]
        else:
            states = [world.states[int(i)] for i in pick(world.state_cdf, rng.random(n))]
        weights = np.array([SPECIES_WEIGHTS[s] for s in SPECIES])
        kinds = pick(np.cumsum(weights / weights.sum()), rng.random(n))
        spellings = [world.style.species[SPECIES[int(k)]] for k in kinds]
        species: list[str | None] = [s[int(rng.integers(len(s)))] for s in spellings]
        for i in np.flatnonzero(rng.random(n) < 0.08):
            states[int(i)] = None
        for i in np.flatnonzero(rng.random(n) < 0.12):
            species[int(i)] = None
        return states, species

    # ------------------------------------------------------------------------------ bad files
    def _small_sales(
        self, world: World, day: int, rng: np.random.Generator, name: str, drop: str | None = None
    ) -> Path:
        """A small, well-formed sales file of ``world`` (order ids no other file uses)."""
        source = world.sources["sales"]
        block = world.sales_block(day, 24, rng, ns=3, seq_start=int(rng.integers(1, 10_000_000)))
        frame = to_source(sales_frame(world, block, format_class(source.format), day), source, drop=drop)
        path = self.tmp / name
        sink = open_sink(path, source)
        sink.write(frame)
        sink.close()
        return path

    def _bad_files(self) -> None:
        """One file per dead-letter reason (where the selection makes it possible)."""
        rng = rng_for(self.seed, "bad-files")
        with_sales = [w for w in self.worlds if "sales" in w.sources]
        if not with_sales:
            return

        def choose(worlds: list[World]) -> World:
            return worlds[int(rng.integers(len(worlds)))]

        def when() -> tuple[int, str]:
            """A day, and the business date of its delivery (the key's date folder)."""
            day = int(rng.integers(len(self.dates)))
            return day, self.dates[self.business(day)].isoformat()

        def fmt(world: World) -> str:
            return world.sources["sales"].format

        def put(key: str, reason: str, path: Path) -> None:
            self._put(key, path, expect=reason)

        # unparseable: garbage CSV, invalid JSON, corrupt Parquet (each where such a source exists)
        utf8_csv = [w for w in with_sales if fmt(w) == "csv" and w.profile.encoding.lower() in ("utf-8", "utf8")]
        gz = [w for w in with_sales if fmt(w) == "csv.gz"]
        if utf8_csv or gz:
            world = choose(utf8_csv or gz)
            day, ds = when()
            path = self._small_sales(world, day, rng, "garbage")
            data = path.read_bytes()
            if fmt(world) == "csv":
                junk = b"\x00\xff\xfe\x00PK\x03\x04" + rng.integers(0, 256, size=512, dtype=np.uint8).tobytes()
                data = data[: len(data) * 3 // 5] + junk
            else:
                data = data[: len(data) // 2]
            path.write_bytes(data)
            put(f"{world.provider.provider}/sales/{ds}/sales_{ds}_resend.{fmt(world)}", "unparseable", path)
        json_worlds = [w for w in with_sales if fmt(w) == "json"] or [w for w in with_sales if fmt(w) == "jsonl"]
        if json_worlds:
            world = choose(json_worlds)
            day, ds = when()
            path = self._small_sales(world, day, rng, "truncated")
            if fmt(world) == "json":
                data = path.read_bytes()
                path.write_bytes(data[: len(data) * 11 // 20])
                reason = "unparseable"
            else:  # a gateway's error page saved under the export's name: not JSON at all
                path.write_bytes(b"<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>\n")
                reason = "format_mismatch"
            put(f"{world.provider.provider}/sales/{ds}/sales_{ds}_resend.{fmt(world)}", reason, path)
        parquet = [w for w in with_sales if fmt(w) == "parquet"]
        if parquet:
            world = choose(parquet)
            day, ds = when()
            path = self._small_sales(world, day, rng, "corrupt")
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            put(f"{world.provider.provider}/sales/{ds}/sales_{ds}_resend.parquet", "unparseable", path)

        # a file without a required column (the sku)
        world = choose(with_sales)
        day, ds = when()
        path = self._small_sales(world, day, rng, "no_sku", drop="sku")
        put(f"{world.provider.provider}/sales/{ds}/sales_{ds}_v2.{fmt(world)}", "missing_columns", path)

        # badly placed keys
        placed: list[tuple[str, str]] = [
            ("Bad-Provider/sales/{ds}/sales_{ds}.{ext}", "bad_provider"),
            ("{p}/returns/{ds}/returns_{ds}.{ext}", "unknown_feed"),
            ("{p}/sales/{year}-13-45/sales_{year}-13-45.{ext}", "bad_date"),
            ("{p}/sales/{ds}/archive/sales_{ds}.{ext}", "bad_key"),
            ("{p}/sales/{ds}/sales {ds} (1).{ext}", "bad_file_name"),
            ("{ghost}/sales/{ds}/sales_{ds}.{ext}", "unknown_provider"),
        ]
        ghost = GHOST_PROVIDER
        while ghost in self.registry.providers:
            ghost += "x"
        for template, reason in placed:
            world = choose(with_sales)
            day, ds = when()
            key = template.format(
                p=world.provider.provider, ds=ds, ext=fmt(world), year=self.dates[0].year, ghost=ghost
            )
            put(key, reason, self._small_sales(world, day, rng, reason))
        world = choose(with_sales)
        day, ds = when()
        path = self.tmp / "workbook.xlsx"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as book:
            book.writestr(
                zipfile.ZipInfo("xl/workbook.xml", date_time=(2026, 1, 1, 0, 0, 0)), '<?xml version="1.0"?><workbook/>'
            )
        path.write_bytes(buffer.getvalue())
        put(f"{world.provider.provider}/sales/{ds}/sales_{ds}.xlsx", "unsupported_format", path)

        # a registered provider sending a feed it is not registered for
        unregistered = [
            (w, f) for w in with_sales for f in ("stores", "customers") if f not in w.sources and f in w.profile.feeds
        ]
        if unregistered:
            world, feed = unregistered[int(rng.integers(len(unregistered)))]
            day, ds = when()
            source = Source(
                provider=world.provider.provider,
                feed=feed,
                format=world.profile.format,
                expected_every_hours=168,
                active=True,
                profile=world.profile,
                timezone=world.provider.timezone,
                currency=world.provider.currency,
            )
            if feed == "stores":
                rows = np.arange(len(world.store_ids))
                frame = stores_frame(world, rows, list(world.store_ids), format_class(source.format), source=source)
                path = self.tmp / "unregistered"
                sink = open_sink(path, source)
                sink.write(to_source(frame, source))
                sink.close()
            else:
                path = self._small_sales(world, day, rng, "unregistered")
            put(f"{world.provider.provider}/{feed}/{ds}/{feed}_{ds}.{source.format}", "unknown_source", path)

        # a well-formed export compressed with gzip but still named .csv (bytes unlike the extension)
        plain = [w for w in with_sales if fmt(w) == "csv"]
        if plain:
            world = choose(plain)
            day, ds = when()
            path = self._small_sales(world, day, rng, "gzipped")
            path.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
            put(f"{world.provider.provider}/sales/{ds}/sales_{ds}_export.csv", "format_mismatch", path)
