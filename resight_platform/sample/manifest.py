"""The ground-truth manifest of a generated sample: what silver and gold must hold, exactly."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from resight_platform.schemas.silver import QUARANTINE_RULES

__all__ = [
    "CATALOG_RULES",
    "CUSTOMERS_RULES",
    "RULES",
    "SALES_RULES",
    "STORES_RULES",
    "Manifest",
    "Tally",
    "combine",
]

#: Quarantine rules per feed, in the contract's order (the first one a row breaks is its rule);
#: the names are the contract's, defined once with the silver models.
RULES: dict[str, tuple[str, ...]] = dict(QUARANTINE_RULES)
SALES_RULES = RULES["sales"]
CATALOG_RULES = RULES["catalog"]
STORES_RULES = RULES["stores"]
CUSTOMERS_RULES = RULES["customers"]
STATUSES = ("completed", "cancelled", "returned")


def money(cents: int) -> str:
    """Integer cents as a decimal string: ``123456`` -> ``"1234.56"``."""
    return str(Decimal(int(cents)).scaleb(-2))


@dataclass
class Manifest:
    """What a generated sample contains; money as decimal strings in USD.

    ``rows_in[feed]``: data rows of every readable, correctly placed file (late files included);
    it equals the valid rows plus ``quarantine[feed]``. Valid sales lines and ``net_amount``
    (quantity x unit_price - discount, each amount converted to USD half-up per value) cover all
    statuses; ``by_status`` splits them. Dimension ``rows`` sum valid rows over files (catalog and
    stores are re-sent weekly); ``products``/``stores``/``customers`` count distinct (provider, id).
    ``files.written`` counts every object written to the landing root, dead-lettered ones included.
    """

    seed: int
    start: str
    days: int
    providers: list[str]
    files: dict[str, int]
    rows_in: dict[str, int]
    sales: dict[str, Any]
    catalog: dict[str, int]
    stores: dict[str, int]
    customers: dict[str, int]
    quarantine: dict[str, dict[str, int]]
    dead_letter: list[dict[str, str]] = field(default_factory=list)
    late_files: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        return cls(**json.loads(text))


@dataclass
class Tally:
    """Aggregates accumulated while files are written (integer cents, exact)."""

    rows_in: Counter[str] = field(default_factory=Counter)
    quarantine: dict[str, Counter[str]] = field(default_factory=lambda: {f: Counter() for f in RULES})
    sales_by: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    by_status: dict[str, list[int]] = field(default_factory=lambda: {s: [0, 0] for s in STATUSES})
    dim_rows: Counter[str] = field(default_factory=Counter)
    dim_ids: dict[str, set[tuple[str, str]]] = field(
        default_factory=lambda: {"catalog": set(), "stores": set(), "customers": set()}
    )
    written: int = 0
    dead_letter: list[dict[str, str]] = field(default_factory=list)
    late_files: list[dict[str, str]] = field(default_factory=list)

    def add_sales(self, day: str, provider: str, status: np.ndarray, net_cents: np.ndarray) -> None:
        """Count valid lines (status codes 0-2) and their USD net cents."""
        entry = self.sales_by.setdefault((day, provider), [0, 0])
        for code, name in enumerate(STATUSES):
            mask = status == code
            lines, cents = int(mask.sum()), int(net_cents[mask].sum())
            entry[0] += lines
            entry[1] += cents
            self.by_status[name][0] += lines
            self.by_status[name][1] += cents

    def add_dim(self, feed: str, provider: str, ids: list[str]) -> None:
        self.dim_rows[feed] += len(ids)
        self.dim_ids[feed].update((provider, i) for i in ids)

    def manifest(self, *, seed: int, start: str, days: int, providers: list[str]) -> Manifest:
        by_date_provider = [
            {"date": day, "provider": provider, "lines": lines, "net_amount": money(cents)}
            for (day, provider), (lines, cents) in sorted(self.sales_by.items())
        ]
        total_lines = sum(v[0] for v in self.sales_by.values())
        total_cents = sum(v[1] for v in self.sales_by.values())
        return Manifest(
            seed=seed,
            start=start,
            days=days,
            providers=providers,
            files={"written": self.written, "dead_letter": len(self.dead_letter)},
            rows_in={feed: int(self.rows_in[feed]) for feed in RULES},
            sales={
                "lines": total_lines,
                "net_amount": money(total_cents),
                "by_date_provider": by_date_provider,
                "by_status": {s: {"lines": v[0], "net_amount": money(v[1])} for s, v in self.by_status.items()},
            },
            catalog={"rows": self.dim_rows["catalog"], "products": len(self.dim_ids["catalog"])},
            stores={"rows": self.dim_rows["stores"], "stores": len(self.dim_ids["stores"])},
            customers={"rows": self.dim_rows["customers"], "customers": len(self.dim_ids["customers"])},
            quarantine={
                feed: {rule: int(self.quarantine[feed][rule]) for rule in rules if self.quarantine[feed][rule]}
                for feed, rules in RULES.items()
            },
            dead_letter=sorted(self.dead_letter, key=lambda d: d["key"]),
            late_files=sorted(self.late_files, key=lambda d: d["key"]),
        )


def combine(manifests: list[Manifest]) -> Manifest:
    """One manifest for samples written side by side into one landing zone (different providers,
    or the same providers on different dates): counts add up, lists are merged."""
    if not manifests:
        raise ValueError("nothing to combine")
    first_day = min(date.fromisoformat(m.start) for m in manifests)
    last_day = max(date.fromisoformat(m.start) + timedelta(days=m.days - 1) for m in manifests)
    providers = list(dict.fromkeys(p for m in manifests for p in m.providers))

    def added(field_name: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for m in manifests:
            total.update(getattr(m, field_name))
        return dict(total)

    by_status = {
        status: {
            "lines": sum(m.sales["by_status"][status]["lines"] for m in manifests),
            "net_amount": str(sum(Decimal(m.sales["by_status"][status]["net_amount"]) for m in manifests)),
        }
        for status in STATUSES
    }
    quarantine: dict[str, dict[str, int]] = {}
    for m in manifests:
        for feed, rules in m.quarantine.items():
            counts = quarantine.setdefault(feed, {})
            for rule, n in rules.items():
                counts[rule] = counts.get(rule, 0) + n
    return Manifest(
        seed=manifests[0].seed,
        start=first_day.isoformat(),
        days=(last_day - first_day).days + 1,
        providers=providers,
        files=added("files"),
        rows_in=added("rows_in"),
        sales={
            "lines": sum(m.sales["lines"] for m in manifests),
            "net_amount": str(sum(Decimal(m.sales["net_amount"]) for m in manifests)),
            "by_date_provider": sorted(
                (row for m in manifests for row in m.sales["by_date_provider"]),
                key=lambda row: (row["date"], row["provider"]),
            ),
            "by_status": by_status,
        },
        catalog=added("catalog"),
        stores=added("stores"),
        customers=added("customers"),
        quarantine=quarantine,
        dead_letter=sorted((d for m in manifests for d in m.dead_letter), key=lambda d: d["key"]),
        late_files=sorted((d for m in manifests for d in m.late_files), key=lambda d: d["key"]),
    )
