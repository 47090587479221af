"""Per-provider state of the sample: what it sells, where, to whom, and how it spells things.

A ``World`` is a pure function of (seed, provider, dates): built from random generators keyed on
stable tuples, so any file can be generated in any order with the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from resight_platform.sources.mappings import Mappings, normalise_alias
from resight_platform.sources.registry import Profile, Provider, Source

from .catalogue import (
    CITIES,
    DEFAULT_STYLE,
    PROFILE_STYLES,
    STATE_POPULATION,
    ProfileStyle,
    brand_aliases,
    product_universe,
    words,
)

__all__ = ["EPOCH", "SalesBlock", "World", "rng_for", "season_factor", "utc_offsets"]

EPOCH = date(1970, 1, 1)
US = 1_000_000
DAY_US = 86_400 * US

SPECIES_WEIGHTS = {
    "dog": 0.55,
    "cat": 0.35,
    "bird": 0.03,
    "fish": 0.03,
    "small_animal": 0.02,
    "reptile": 0.015,
    "other": 0.005,
}
STATUS_P = np.array([0.90, 0.04, 0.06])  # completed, cancelled, returned
ORDER_SIZE_P = np.array([0.45, 0.30, 0.15, 0.10])  # 1-4 lines
QTY_P = np.array([0.50, 0.22, 0.12, 0.08, 0.05, 0.03])  # 1-6
_STORE_HOURS = np.array([0] * 8 + [2, 4, 6, 7, 8, 8, 8, 8, 8, 9, 9, 7, 5, 3] + [0, 0], dtype=float)
# No orders at 01:00-02:59 local: US DST switches happen there, so local times are never ambiguous.
_ONLINE_HOURS = np.array([2, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 6, 6, 7, 8, 9, 9, 8, 6, 4], dtype=float)

_SIZE = {"retail": (500, 1700), "ecommerce": (600, 2000), "distributor": (250, 900), "vet": (200, 650)}
_CATALOG = {"retail": (180, 420), "ecommerce": (300, 650), "distributor": (400, 700), "vet": (90, 180)}
_STORES = {"retail": (12, 80), "ecommerce": (3, 8), "distributor": (40, 180), "vet": (4, 25)}
_WEEKDAY = {  # Monday .. Sunday
    "retail": (0.85, 0.85, 0.9, 0.95, 1.05, 1.3, 1.2),
    "ecommerce": (1.1, 1.0, 1.0, 1.0, 0.95, 0.95, 1.0),
    "distributor": (1.2, 1.15, 1.1, 1.1, 1.05, 0.6, 0.4),
    "vet": (1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.4),
}
_CATEGORY_WEIGHT = {
    "retail": {"supplies": 1.5, "grooming": 1.5, "litter": 1.3, "toys": 1.3, "treats": 1.2},
    "vet": {"health": 8.0, "food": 1.0, "treats": 0.4, "toys": 0.1, "supplies": 0.3, "litter": 0.1},
}
#: Yearly demand shape per category: ``(day of year of the peak, amplitude, width in days)`` bumps
#: added to 1 (flea & tick treatments in summer, toys and treats at the holidays, litter in winter,
#: grooming at the spring shedding, supplies with the spring's new pets). A width of 0 is a cosine
#: over the whole year. Demand also grows by ``_TREND`` a year, 1 at ``_TREND_FROM`` (the demo's
#: first day, so its two dense weeks keep their volume and the history before them is smaller).
_SEASONS: dict[str, tuple[tuple[int, float, int], ...]] = {
    "food": ((15, 0.05, 0),),
    "treats": ((355, 0.6, 14), (304, 0.25, 5)),
    "litter": ((20, 0.15, 0),),
    "toys": ((356, 1.4, 12), (332, 0.4, 4)),
    "health": ((196, 0.6, 0),),
    "supplies": ((105, 0.25, 0),),
    "grooming": ((135, 0.3, 0),),
}
_TREND = 0.08
_TREND_FROM = date(2026, 10, 1)
_HOME_REGIONS = {
    "America/New_York": ("Northeast", "South"),
    "America/Chicago": ("Midwest", "South"),
    "America/Denver": ("West", "Midwest"),
    "America/Los_Angeles": ("West",),
    "America/Phoenix": ("West",),
}
_INDEPENDENTS = (
    "Main Street Pets",
    "Happy Hound Supply",
    "The Feed Barn",
    "Paws & Relax",
    "Café Canin",
    "Neighborhood Pet Shop",
    "Country Feed & Pet",
    "Bark Avenue",
    "The Critter Shoppe",
    "Fin & Feather",
    "Purrfect Pantry",
    "Hometown Pet Supply",
)


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator keyed on ``seed`` and a stable tuple (never Python's ``hash()``)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()
    return np.random.default_rng(np.random.SeedSequence([seed, int.from_bytes(digest, "little")]))


def utc_offsets(tz: ZoneInfo, day: date) -> tuple[int, int]:
    """UTC offset in seconds at 00:30 and at 12:00 local time on ``day``."""
    first = datetime(day.year, day.month, day.day, 0, 30, tzinfo=tz).utcoffset()
    noon = datetime(day.year, day.month, day.day, 12, 0, tzinfo=tz).utcoffset()
    assert first is not None and noon is not None
    return int(first.total_seconds()), int(noon.total_seconds())


def season_factor(category: str, day: date) -> float:
    """Relative demand of ``category`` on ``day`` from its yearly shape and the trend (1 = average)."""
    doy = day.timetuple().tm_yday
    factor = 1.0
    for peak, amplitude, width in _SEASONS.get(category, ()):
        if width == 0:
            factor += amplitude * float(np.cos(2 * np.pi * (doy - peak) / 365.25))
        else:
            distance = min(abs(doy - peak), 365 - abs(doy - peak))
            factor += amplitude * float(np.exp(-0.5 * (distance / width) ** 2))
    trend = 1.0 + _TREND * (day - _TREND_FROM).days / 365.25
    return max(0.05, factor) * max(0.5, trend)


def _short_code(slug: str) -> str:
    parts = [p for p in slug.split("_") if p]
    code = "".join(p[0] for p in parts) if len(parts) > 1 else slug[:2]
    return code.upper()


def _cdf(weights: np.ndarray) -> np.ndarray:
    total = float(weights.sum())
    return np.cumsum(weights) / total if total > 0 else np.ones(len(weights))


def pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution (zero-weight entries are never drawn)."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int64)


@dataclass
class SalesBlock:
    """Sales lines in canonical form; money in integer cents of the provider's currency."""

    order_ns: np.ndarray  # id namespace digit: 1 primary file, 2 late file, 3 bad files, 9 broken rows
    order_seq: np.ndarray
    line_no: np.ndarray
    local_us: np.ndarray  # local wall-clock time as microseconds since 1970-01-01 (naive)
    offset_s: np.ndarray  # local = UTC + offset
    store_idx: np.ndarray  # -1 = none
    online: np.ndarray
    sku_idx: np.ndarray
    qty: np.ndarray
    unit_cents: np.ndarray
    disc_cents: np.ndarray
    cust_idx: np.ndarray  # -1 = none
    status: np.ndarray  # 0 completed, 1 cancelled, 2 returned
    ship_state: np.ndarray  # index into World.states, -1 = none

    def __len__(self) -> int:
        return len(self.order_seq)

    @property
    def utc_us(self) -> np.ndarray:
        return self.local_us - self.offset_s * US

    @staticmethod
    def concat(blocks: list[SalesBlock]) -> SalesBlock:
        names = SalesBlock.__dataclass_fields__
        return SalesBlock(**{name: np.concatenate([getattr(b, name) for b in blocks]) for name in names})


@dataclass
class World:
    """Everything about one provider the sample needs; see the module docstring."""

    seed: int
    provider: Provider
    profile: Profile
    sources: dict[str, Source]
    dates: list[date]
    mappings: Mappings
    profile_rank: int = 0
    style: ProfileStyle = field(init=False)
    code: str = field(init=False)
    tz: ZoneInfo = field(init=False)
    base_lines: float = field(init=False)
    usd_ratio: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        p = self.provider
        self.style = PROFILE_STYLES.get(self.profile.name, DEFAULT_STYLE)
        self.code = _short_code(p.provider)
        self.tz = ZoneInfo(p.timezone)
        if p.currency not in self.mappings.usd_per_unit:
            raise ValueError(f"provider {p.provider}: no fx rate for {p.currency} in fx_rates.csv")
        self.usd_ratio = self.mappings.usd_per_unit[p.currency].as_integer_ratio()
        lo, hi = _SIZE.get(p.kind, (300, 1200))
        self.base_lines = float(rng_for(self.seed, p.provider, "world", "size").uniform(lo, hi))
        self.deliveries = [i for i in range(len(self.dates)) if i % 7 == 0]
        self.states = sorted(self.mappings.regions)
        pop = np.array([STATE_POPULATION.get(s, 0.5) for s in self.states])
        self.state_cdf = _cdf(pop)
        sales = self.sources.get("sales")
        cols = set(sales.layout.columns.values()) if sales else set()
        self.has_channel_column = "channel" in cols
        if p.kind == "ecommerce":
            self.online_share = 1.0
        elif self.has_channel_column and "ship_state" in cols:
            self.online_share = 0.12
        else:
            self.online_share = 0.0
        self.customer_share = 0.6 if "customers" in self.sources and "customer_id" in cols else 0.0
        self.status_alias = self.style.status
        self.channel_alias = self.style.channels[self.profile_rank % len(self.style.channels)]
        self.iso_variant = (
            ("offset", "utc", "naive")[self.profile_rank % 3] if self.profile.name == "standard_csv" else "offset"
        )
        self.blank_zero_discount = self.profile.name == "legacy_pos" or (
            self.profile.name == "standard_csv" and self.profile_rank % 2 == 1
        )
        # Each part draws from its own generator and later deliveries from per-date ones, so a
        # longer sample starts with exactly the files of a shorter one.
        self._build_products(rng_for(self.seed, p.provider, "world", "catalog"))
        self._build_stores(rng_for(self.seed, p.provider, "world", "stores"))
        self._build_customers(rng_for(self.seed, p.provider, "world", "customers"))
        self._cdf_cache: dict[tuple[str, int], np.ndarray] = {}

    # ----------------------------------------------------------------------------------- catalog
    def _new_counts(self, feed: str, lo: int, hi: int) -> list[int]:
        """How many items each later delivery of ``feed`` adds (drawn per delivery date)."""
        return [
            int(
                rng_for(self.seed, self.provider.provider, feed, self.dates[day].isoformat(), "new").integers(
                    lo, hi + 1
                )
            )
            for day in self.deliveries[1:]
        ]

    def _intro(self, n_base: int, new_per: list[int], feed: str) -> np.ndarray:
        intro = np.zeros(n_base + sum(new_per), dtype=np.int64)
        pos = n_base
        for day, count in zip(self.deliveries[1:], new_per, strict=True):
            intro[pos : pos + count] = day
            pos += count
        if feed not in self.sources:
            intro[:] = 0
        return intro

    def _build_products(self, rng: np.random.Generator) -> None:
        universe = product_universe()
        kind = self.provider.kind
        size = len(universe)
        weights = np.array([_CATEGORY_WEIGHT.get(kind, {}).get(u.category, 1.0) for u in universe])
        lo, hi = _CATALOG.get(kind, (150, 400))
        n_base = min(int(rng.integers(lo, hi + 1)), size - 40)
        # The provider's whole assortment order, decided once: deliveries take the next items.
        order = rng.choice(size, size=size, replace=False, p=weights / weights.sum())
        popularity = rng.pareto(1.2, size=size) + 0.05
        factor = rng.uniform(0.92, 1.12, size=size)
        aliases = brand_aliases(self.mappings)
        brand_choice = {b: a[int(rng.integers(len(a)))] for b, a in sorted(aliases.items())}
        style = self.style
        spelled = []
        for i in order:
            u = universe[int(i)]
            cats = style.categories[u.category]
            spelled.append(
                (
                    self._brand_spelling(u.brand, brand_choice[u.brand], aliases[u.brand], rng),
                    cats[int(rng.integers(len(cats)))],
                )
            )
        new_per = self._new_counts("catalog", 2, 8)
        self.product_intro = self._intro(n_base, new_per, "catalog")
        total = min(len(self.product_intro), size)
        self.product_intro = self.product_intro[:total]
        chosen = order[:total]
        self.product_universe_idx = chosen
        self.product_weight = popularity[:total]
        self.product_category = [universe[int(i)].category for i in chosen]
        self.skus = [style.sku_format.format(code=self.code, n=int(n)) for n in 1 + np.arange(total) * 3]
        num, den = self.usd_ratio
        base = np.array([universe[i].base_cents for i in chosen], dtype=float) * den / num
        self.list_cents = np.maximum(99, np.round(base * factor[:total] / 50.0).astype(np.int64) * 50 - 1)
        self.brand_text = [b for b, _ in spelled[:total]]
        self.category_text = [c for _, c in spelled[:total]]
        products = [universe[int(i)] for i in chosen]
        self.species_text = [style.species[u.species][0] for u in products]
        self.unit_text: list[str | None] = [style.units[u.pack_unit] if u.pack_unit else None for u in products]
        self.name_text = [u.name.upper()[:30].rstrip(" ,") if style.name_case == "upper" else u.name for u in products]
        self.pack_size: list[float | None] = [u.pack_size for u in products]
        self.upcs = [u.upc for u in products]

    def _brand_spelling(self, brand: str, alias: str, all_aliases: tuple[str, ...], rng: np.random.Generator) -> str:
        case = self.style.brand_case
        canonical = normalise_alias(brand)
        if case == "upper":
            return alias.upper()
        if case == "words":
            return brand if alias == canonical else words(alias)
        alias = all_aliases[int(rng.integers(len(all_aliases)))]
        text = [brand if alias == canonical else words(alias), alias.upper(), alias][int(rng.integers(3))]
        if rng.random() < 0.1:  # stray white space, collapsed by normalise_alias
            text = text.replace(" ", "  ", 1) + " "
        return text

    # ------------------------------------------------------------------------------------ stores
    def _build_stores(self, rng: np.random.Generator) -> None:
        kind = self.provider.kind
        lo, hi = _STORES.get(kind, (5, 30))
        n_base = int(rng.integers(lo, hi + 1))
        new_per = self._new_counts("stores", 0, 2)
        self.store_intro = self._intro(n_base, new_per, "stores")
        home = _HOME_REGIONS.get(self.provider.timezone, ())
        city_w = np.array([3.0 if self.mappings.regions.get(s) in home else 1.0 for _, s, _ in CITIES])
        city_p = city_w / city_w.sum()
        self.store_ids = [
            self.style.store_format.format(code=self.code, n=int(n)) for n in 1 + np.arange(len(self.store_intro))
        ]
        self.store_city: list[str] = []
        self.store_state: list[str] = []
        self.store_zip: list[int] = []
        self.store_name: list[str] = []
        weights: list[float] = []
        seen: dict[str, int] = {}
        batches = [(rng, n_base)] + [
            (rng_for(self.seed, self.provider.provider, "stores", self.dates[day].isoformat(), "new"), count)
            for day, count in zip(self.deliveries[1:], new_per, strict=True)
        ]
        for batch_rng, count in batches:
            for _ in range(count):
                k = len(self.store_name)
                city, state, zip3 = CITIES[int(batch_rng.choice(len(CITIES), p=city_p))]
                seen[city] = seen.get(city, 0) + 1
                suffix = f" #{seen[city]}" if seen[city] > 1 else ""
                if kind == "distributor":
                    name = f"{_INDEPENDENTS[int(batch_rng.integers(len(_INDEPENDENTS)))]} {city}{suffix}"
                elif kind == "vet":
                    name = f"{self.provider.name} Animal Hospital {city}{suffix}"
                else:
                    cafe = " Café" if k == 0 or batch_rng.random() < 0.05 else ""
                    name = f"{self.provider.name}{cafe} {city}{suffix}"
                self.store_name.append(name)
                self.store_city.append(city)
                self.store_state.append(state)
                self.store_zip.append(int(zip3) * 100 + int(batch_rng.integers(0, 100)))
                weights.append(float(batch_rng.lognormal(0.0, 0.5)))
        self.store_weight = np.array(weights)

    # --------------------------------------------------------------------------------- customers
    def _build_customers(self, rng: np.random.Generator) -> None:
        days = len(self.dates)
        self.customer_backlog = 0
        self.customer_new = np.zeros(days, dtype=np.int64)
        if "customers" in self.sources:
            self.customer_backlog = round(self.base_lines * rng.uniform(2.0, 4.0))
            rate = rng.uniform(0.004, 0.012)
            for i, d in enumerate(self.dates):
                day_rng = rng_for(self.seed, self.provider.provider, "customers", d.isoformat(), "count")
                self.customer_new[i] = max(1, round(self.customer_backlog * rate * day_rng.uniform(0.6, 1.4)))
        self.customer_cum = self.customer_backlog + np.cumsum(self.customer_new)

    def customer_id(self, n: int) -> str:
        return self.style.customer_format.format(code=self.code, n=n + 1)

    def customers_on(self, day: int) -> tuple[int, int]:
        """Index range of the customers first delivered in the file of ``day``."""
        hi = int(self.customer_cum[day])
        lo = 0 if day == 0 else int(self.customer_cum[day - 1])
        return lo, hi

    # ------------------------------------------------------------------------------------- sales
    def default_lines(self, day: int, volume: float = 1.0) -> int:
        """The provider's own sales lines on ``day``: its size x ``volume`` x weekday x season x noise."""
        d = self.dates[day]
        weekday = _WEEKDAY.get(self.provider.kind, (1.0,) * 7)[d.weekday()]
        noise = rng_for(self.seed, self.provider.provider, "sales", d.isoformat(), "volume").uniform(0.85, 1.15)
        offered = self.product_weight * (self.product_intro <= day)
        season = float((offered * self._season(day)).sum() / max(float(offered.sum()), 1e-9))
        return max(20, round(self.base_lines * volume * weekday * season * noise))

    def _season(self, day: int) -> np.ndarray:
        """Each product's relative demand on ``day`` (its category's season and the trend)."""
        d = self.dates[day]
        factors = {c: season_factor(c, d) for c in set(self.product_category)}
        return np.array([factors[c] for c in self.product_category])

    def product_cdf(self, day: int) -> np.ndarray:
        key = ("product", day)
        if key not in self._cdf_cache:
            self._cdf_cache[key] = _cdf(self.product_weight * (self.product_intro <= day) * self._season(day))
        return self._cdf_cache[key]

    def store_cdf(self, day: int) -> np.ndarray:
        key = ("store", day)
        if key not in self._cdf_cache:
            self._cdf_cache[key] = _cdf(self.store_weight * (self.store_intro <= day))
        return self._cdf_cache[key]

    def sales_block(
        self, day: int, n: int, rng: np.random.Generator, *, ns: int, seq_start: int, single_line: bool = False
    ) -> SalesBlock:
        """``n`` valid sales lines of ``day`` (orders of 1-4 lines, or one line each)."""
        if single_line or n == 0:
            sizes = np.ones(n, dtype=np.int64)
        else:
            sizes = rng.choice(4, size=n, p=ORDER_SIZE_P).astype(np.int64) + 1
            cum = np.cumsum(sizes)
            k = int(np.searchsorted(cum, n)) + 1
            sizes = sizes[:k]
            sizes[-1] -= int(cum[k - 1]) - n
        k = len(sizes)
        order = np.repeat(np.arange(k), sizes)
        starts = np.cumsum(sizes) - sizes
        line_no = np.arange(n, dtype=np.int64) - starts[order] + 1
        online = rng.random(k) < self.online_share
        hours_store = pick(_cdf(_STORE_HOURS), rng.random(k))
        hours_online = pick(_cdf(_ONLINE_HOURS), rng.random(k))
        hour = np.where(online, hours_online, hours_store)
        seconds = hour * 3600 + rng.integers(0, 3600, size=k)
        d = self.dates[day]
        local_us = ((d - EPOCH).days * 86_400 + seconds) * US
        off_first, off_noon = utc_offsets(self.tz, d)
        offset = np.where(hour < 2, off_first, off_noon).astype(np.int64)
        has_stores = bool((self.store_intro <= day).any()) and "stores" in self.sources
        store = np.where(online | (not has_stores), -1, pick(self.store_cdf(day), rng.random(k)))
        ship = np.where(online, pick(self.state_cdf, rng.random(k)), -1)
        n_cust = int(self.customer_cum[day]) if len(self.customer_cum) else 0
        has_cust = (rng.random(k) < self.customer_share) & (n_cust > 0)
        cust = np.where(has_cust, rng.integers(0, max(n_cust, 1), size=k), -1)
        status = pick(np.cumsum(STATUS_P), rng.random(k))
        sku = pick(self.product_cdf(day), rng.random(n))
        qty = rng.choice(6, size=n, p=QTY_P).astype(np.int64) + 1
        unit = self.list_cents[sku]
        sale = rng.random(n) < 0.12
        unit = np.where(sale, np.maximum(1, np.round(unit * rng.uniform(0.80, 0.95, size=n))).astype(np.int64), unit)
        coupon = rng.random(n) < 0.10
        disc = np.where(coupon, np.maximum(1, np.round(qty * unit * rng.uniform(0.05, 0.30, size=n))), 0)
        return SalesBlock(
            order_ns=np.full(n, ns, dtype=np.int64),
            order_seq=(seq_start + np.arange(k, dtype=np.int64))[order],
            line_no=line_no,
            local_us=local_us[order],
            offset_s=offset[order],
            store_idx=store[order].astype(np.int64),
            online=online[order],
            sku_idx=sku,
            qty=qty,
            unit_cents=unit.astype(np.int64),
            disc_cents=disc.astype(np.int64),
            cust_idx=cust[order].astype(np.int64),
            status=status[order],
            ship_state=ship[order].astype(np.int64),
        )

    def shift_days(self, block: SalesBlock, rows: np.ndarray, days: np.ndarray) -> None:
        """Move ``rows`` of ``block`` by whole days (same wall-clock time), fixing their UTC offsets."""
        block.local_us[rows] += days * DAY_US
        for row in rows:
            local = datetime(1970, 1, 1) + timedelta(microseconds=int(block.local_us[row]))
            first, noon = utc_offsets(self.tz, local.date())
            block.offset_s[row] = first if local.hour < 2 else noon

    def usd_cents(self, cents: np.ndarray) -> np.ndarray:
        """ROUND_HALF_UP(cents x rate) for non-negative integer cents, exactly."""
        num, den = self.usd_ratio
        if num == den:
            return cents
        return (2 * cents * num + den) // (2 * den)
