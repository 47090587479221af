"""Lazy validation against a model, chunk by chunk: every rule counted, a sample of failing rows."""

from __future__ import annotations

import polars as pl

from resight_platform.schemas import SilverSales
from resight_platform.schemas.validation import Validation
from resight_platform_tests.schemas.test_silver_models import sales_frame, sales_row


def test_a_clean_frame_passes_and_is_counted() -> None:
    v = Validation(SilverSales)
    v.add(sales_frame(sales_row(), sales_row(line_no=2)), partition="2026-10-01|pawmart")
    assert v.passed and v.rows == 2 and v.failing_rows == 0 and not v.sample


def test_every_rule_broken_in_every_chunk_is_counted_not_only_the_first() -> None:
    v = Validation(SilverSales, sample_size=3)
    first = sales_frame(
        sales_row(),
        sales_row(line_no=2, quantity=0, net_amount=5.0),  # quantity and the amount identity
        sales_row(line_no=3, status="pending"),
    )
    # A "fax" line is not a store line, yet it has a store: two rules, one failing row.
    second = sales_frame(sales_row(line_no=4, channel="fax"), sales_row(line_no=5, order_id=""))
    v.add(first, partition="2026-10-01|pawmart")
    v.add(second, partition="2026-10-02|pawmart")
    assert not v.passed
    assert v.rows == 5 and v.failing_rows == 4
    assert dict(v.failures) == {
        "quantity.greater_than(0)": 1,
        "net_amount_is_quantity_times_price_less_discount": 1,
        "status.isin(('cancelled', 'completed', 'returned'))": 1,
        "channel.isin(('online', 'store'))": 1,
        "online_lines_have_no_store": 1,
        "order_id.str_length(1, None)": 1,
    }
    # The sample holds whole failing rows with the first rule each broke and its partition.
    assert len(v.sample) == 3
    assert {(row["line_no"], row["partition"]) for row in v.sample} == {
        (2, "2026-10-01|pawmart"),
        (3, "2026-10-01|pawmart"),
        (4, "2026-10-02|pawmart"),
    }
    assert all(row["rule"] in v.failures for row in v.sample)


def test_shape_errors_name_the_column() -> None:
    v = Validation(SilverSales)
    frame = sales_frame(sales_row()).with_columns(pl.lit(1).alias("extra")).drop("ship_state")
    v.add(frame)
    assert v.failures["column_in_schema(extra)"] == 1
    assert v.failures["column_in_dataframe(ship_state)"] == 1


def test_many_partitions_validated_in_one_call_keep_their_own_labels() -> None:
    v = Validation(SilverSales)
    v.add_many(
        [
            ("2026-10-01|pawmart", sales_frame(sales_row(), sales_row(line_no=2))),
            ("2026-10-01|petopia", sales_frame(sales_row(provider="petopia", quantity=0, net_amount=-1.0))),
            ("2026-10-02|pawmart", sales_frame(sales_row(line_no=3, status="pending"))),
        ]
    )
    assert v.rows == 4 and v.frames == 3 and v.failing_rows == 2
    assert {(row["provider"], row["partition"]) for row in v.sample} == {
        ("petopia", "2026-10-01|petopia"),
        ("pawmart", "2026-10-02|pawmart"),
    }


def test_failures_are_kept_per_partition_and_only_for_partitions_that_failed() -> None:
    v = Validation(SilverSales, sample_size=1)  # the per-partition figures do not depend on the sample
    v.add_many(
        [
            ("2026-10-01|pawmart", sales_frame(sales_row(), sales_row(line_no=2))),
            ("2026-10-01|petopia", sales_frame(sales_row(provider="petopia", quantity=0, net_amount=-1.0))),
            ("2026-10-02|pawmart", sales_frame(sales_row(line_no=3, status="pending"))),
            ("2026-10-02|pawmart", sales_frame(sales_row(line_no=4, status="lost"), sales_row(line_no=5))),
        ]
    )
    assert set(v.by_partition) == {"2026-10-01|petopia", "2026-10-02|pawmart"}
    petopia = v.by_partition["2026-10-01|petopia"]
    assert (petopia.rows, petopia.failures) == (1, {"quantity.greater_than(0)": 1})
    # Two chunks of one partition in the batch: its rows add up.
    status = "status.isin(('cancelled', 'completed', 'returned'))"
    assert v.by_partition["2026-10-02|pawmart"].rows == 2
    assert v.by_partition["2026-10-02|pawmart"].failures == {status: 2}
    assert sum(p.rows for p in v.by_partition.values()) == v.failing_rows == 3


def test_a_shape_error_is_charged_to_every_partition_of_its_batch() -> None:
    v = Validation(SilverSales)
    pieces = [(f"2026-10-0{n}|pawmart", sales_frame(sales_row(line_no=n)).drop("ship_state")) for n in (1, 2)]
    v.add_many(pieces)
    assert set(v.by_partition) == {"2026-10-01|pawmart", "2026-10-02|pawmart"}
    assert all(p.failures["column_in_dataframe(ship_state)"] == 1 for p in v.by_partition.values())
