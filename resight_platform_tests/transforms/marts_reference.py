"""Every mart computed again from what Postgres holds in ``gold.fact_sales`` and the dimensions,
in plain Python (``Decimal`` money, dicts and sets), apart from ``transforms/marts.py`` in
everything but the definitions it implements:

- revenue is the net amount of completed lines; an order is one (provider, order_id);
- a fact row's product attributes come from ``dim_product`` (a missing brand is ``Unknown``, a
  missing category or species ``other``), its region is the fact's (``Unknown`` when missing);
- shares are of their group's amount (0 in a group whose amount is 0); a brand's share change is
  against its share in the same segment the month before (none when it had no sales there);
- the average order value is revenue / orders to the cent, halves rounded up;
- the top lists rank by revenue, ties by provider then SKU (or customer id), top ``TOP_N``; a
  product (customer) is the fact's own provider and SKU (customer id), resolved or not (key 0, the
  unknown member), its attributes those of the dimension's member with that natural key (none:
  no name, brand ``Unknown``, category and species ``other``; no region).

:func:`differences` compares the result with the marts in Postgres, every row: counts exactly,
money to the cent, shares to 1e-9.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg

__all__ = ["GRAIN", "differences", "expected_marts", "mart_rows"]

TOP_N = 20
CENT = Decimal("0.01")

#: Each mart's key columns (one row per key) and its measure columns.
GRAIN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "daily_sales": (
        ("sale_date", "category", "species", "region", "channel"),
        ("units", "revenue", "orders", "avg_order_value"),
    ),
    "monthly_sales": (
        ("month", "category", "species", "region", "channel"),
        ("units", "revenue", "orders", "avg_order_value"),
    ),
    "brand_share_monthly": (
        ("month", "category", "species", "region", "brand"),
        ("revenue", "share", "share_change"),
    ),
    "top_products_monthly": (
        ("month", "rank"),
        ("provider", "sku", "product_name", "brand", "category", "species", "units", "revenue"),
    ),
    "top_customers_monthly": (("month", "rank"), ("provider", "customer_id", "region", "orders", "revenue")),
    "order_status_impact": (("month", "category", "region", "status"), ("lines", "amount", "share_of_amount")),
    "aov_by_region": (("month", "region"), ("orders", "revenue", "avg_order_value")),
}
_SHARES = {"share", "share_change", "share_of_amount"}

Rows = dict[tuple[Any, ...], dict[str, Any]]


def _fetch(conn: psycopg.Connection[Any], query: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(query)  # type: ignore[arg-type]
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def mart_rows(conn: psycopg.Connection[Any], name: str) -> Rows:
    """The mart ``name`` as Postgres holds it, keyed by its grain."""
    keys, _ = GRAIN[name]
    rows: Rows = {}
    for row in _fetch(conn, f"SELECT * FROM marts.{name}"):
        key = tuple(row[k] for k in keys)
        assert key not in rows, f"{name}: two rows for {key}"
        rows[key] = row
    return rows


def _month(day: date) -> date:
    return day.replace(day=1)


def _aov(revenue: Decimal, orders: int) -> Decimal:
    return (revenue / orders).quantize(CENT, rounding=ROUND_HALF_UP)


def _sales(groups: dict[tuple[Any, ...], list[dict[str, Any]]]) -> Rows:
    out: Rows = {}
    for key, lines in groups.items():
        revenue = sum((line["net_amount"] for line in lines), Decimal(0))
        orders = len({(line["provider_key"], line["order_id"]) for line in lines})
        out[key] = {
            "units": sum(line["quantity"] for line in lines),
            "revenue": revenue,
            "orders": orders,
            "avg_order_value": _aov(revenue, orders),
        }
    return out


def _share(part: Decimal, whole: Decimal) -> float:
    return float(part / whole) if whole else 0.0


def _top(candidates: Iterable[tuple[tuple[Any, ...], dict[str, Any]]], tie: tuple[str, ...]) -> Rows:
    """Rank ``(month, …)``-keyed candidates by revenue per month, ties by ``tie`` columns."""
    by_month: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for key, row in candidates:
        by_month[key[0]].append(row)
    out: Rows = {}
    for month, rows in by_month.items():
        rows.sort(key=lambda r: (-r["revenue"], *(r[c] for c in tie)))
        for rank, row in enumerate(rows[:TOP_N], start=1):
            out[(month, rank)] = row
    return out


def expected_marts(conn: psycopg.Connection[Any]) -> dict[str, Rows]:
    """Every mart, from the facts and dimensions in Postgres."""
    dim_products = _fetch(
        conn,
        "SELECT product_key, provider, sku, product_name, brand, category, species FROM gold.dim_product"
        " WHERE product_key <> 0",
    )
    products = {p["product_key"]: p for p in dim_products}
    product_by_sku = {(p["provider"], p["sku"]): p for p in dim_products}
    region_by_id = {
        (c["provider"], c["customer_id"]): c["region"]
        for c in _fetch(conn, "SELECT provider, customer_id, region FROM gold.dim_customer WHERE customer_key <> 0")
    }
    lines = _fetch(
        conn,
        "SELECT sale_date, provider_key, product_key, provider, sku, customer_id, order_id, channel, quantity,"
        " net_amount, status, region FROM gold.fact_sales",
    )
    for line in lines:
        product = products.get(line["product_key"], {})
        line["brand"] = product.get("brand") or "Unknown"
        line["category"] = product.get("category") or "other"
        line["species"] = product.get("species") or "other"
        line["region"] = line["region"] or "Unknown"
        line["month"] = _month(line["sale_date"])
    completed = [line for line in lines if line["status"] == "completed"]

    def grouped(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            groups[tuple(row[k] for k in keys)].append(row)
        return groups

    out: dict[str, Rows] = {}
    for name in ("daily_sales", "monthly_sales", "aov_by_region"):
        keys, measures = GRAIN[name]
        out[name] = {k: {m: v[m] for m in measures} for k, v in _sales(grouped(completed, keys)).items()}

    # Brand share: each brand's part of its segment's revenue, and the change since last month.
    keys, _ = GRAIN["brand_share_monthly"]
    revenue = {k: sum((r["net_amount"] for r in rows), Decimal(0)) for k, rows in grouped(completed, keys).items()}
    segment_total: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for key, amount in revenue.items():
        segment_total[key[:4]] += amount
    shares = {key: _share(amount, segment_total[key[:4]]) for key, amount in revenue.items()}
    brand: Rows = {}
    for key, amount in revenue.items():
        month = key[0]
        before = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
        previous = shares.get((before, *key[1:]))
        brand[key] = {
            "revenue": amount,
            "share": shares[key],
            "share_change": None if previous is None else shares[key] - previous,
        }
    out["brand_share_monthly"] = brand

    # Order status: every line, by status, and each status's part of its group's amount.
    keys, _ = GRAIN["order_status_impact"]
    status: Rows = {}
    group_total: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for key, rows in grouped(lines, keys).items():
        amount = sum((r["net_amount"] for r in rows), Decimal(0))
        status[key] = {"lines": len(rows), "amount": amount}
        group_total[key[:3]] += amount
    for key, row in status.items():
        row["share_of_amount"] = _share(row["amount"], group_total[key[:3]])
    out["order_status_impact"] = status

    # Top products: per provider SKU (the fact's own) and month.
    by_product = grouped(completed, ("month", "provider", "sku"))
    out["top_products_monthly"] = _top(
        (
            (
                key,
                {
                    "provider": key[1],
                    "sku": key[2],
                    "product_name": product_by_sku.get(key[1:], {}).get("product_name"),
                    "brand": product_by_sku.get(key[1:], {}).get("brand") or "Unknown",
                    "category": product_by_sku.get(key[1:], {}).get("category") or "other",
                    "species": product_by_sku.get(key[1:], {}).get("species") or "other",
                    "units": sum(r["quantity"] for r in rows),
                    "revenue": sum((r["net_amount"] for r in rows), Decimal(0)),
                },
            )
            for key, rows in by_product.items()
        ),
        ("provider", "sku"),
    )

    # Top customers: loyalty customers only (a sale naming a customer id, in dim_customer or not yet).
    loyal = [r for r in completed if r["customer_id"] is not None]
    by_customer = grouped(loyal, ("month", "provider", "customer_id"))
    out["top_customers_monthly"] = _top(
        (
            (
                key,
                {
                    "provider": key[1],
                    "customer_id": key[2],
                    "region": region_by_id.get(key[1:]),
                    "orders": len({(r["provider_key"], r["order_id"]) for r in rows}),
                    "revenue": sum((r["net_amount"] for r in rows), Decimal(0)),
                },
            )
            for key, rows in by_customer.items()
        ),
        ("provider", "customer_id"),
    )
    return out


def _same(column: str, want: Any, got: Any) -> bool:
    if column in _SHARES:
        if want is None or got is None:
            return want is None and got is None
        return abs(float(want) - float(got)) <= 1e-9
    return bool(want == got)


def differences(name: str, want: Rows, got: Rows, shown: int = 10) -> list[str]:
    """What differs between the expected rows of a mart and Postgres's, at most ``shown`` lines."""
    _, measures = GRAIN[name]
    out = [f"{name}: row {key} missing" for key in sorted(set(want) - set(got), key=str)]
    out += [f"{name}: row {key} not expected" for key in sorted(set(got) - set(want), key=str)]
    for key in sorted(set(want) & set(got), key=str):
        for column in measures:
            if not _same(column, want[key][column], got[key][column]):
                out.append(f"{name} {key}: {column} = {got[key][column]!r}, expected {want[key][column]!r}")
    return out[:shown]
