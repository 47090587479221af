"""Column names and values against the canonical columns, and unknown values' likely meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from resight_platform.onboard.columns import (
    guess_target,
    load_knowledge,
    match_columns,
    name_tokens,
)
from resight_platform.sources.mappings import vocabulary


def test_names_split_into_tokens_with_abbreviations_expanded() -> None:
    abbreviations = load_knowledge().abbreviations
    assert name_tokens("ItemSKU", abbreviations) == ("item", "sku")
    assert name_tokens(" Qty ", abbreviations) == ("quantity",)
    assert name_tokens("Customer #", abbreviations) == ("customer", "number")
    assert name_tokens("discount_cents", abbreviations) == ("discount", "cent")
    assert name_tokens("st8", abbreviations) == ("state", "8")


def test_guessed_targets_of_unknown_values() -> None:
    mappings, knowledge = vocabulary(), load_knowledge()
    assert guess_target("brands", "Purina ProPlan!", knowledge, mappings)[:2] == ("Purina Pro Plan", 0.9)
    assert guess_target("status", "RTN", knowledge, mappings)[:2] == ("returned", 0.6)
    assert guess_target("status", "SOLD", knowledge, mappings)[:2] == ("completed", 0.8)
    target, confidence, evidence = guess_target("species", "felines", knowledge, mappings)
    assert (target, "spelled like the alias 'feline'") == ("cat", evidence.split(" (")[0])
    assert 0.6 < confidence < 0.8
    assert guess_target("categories", "widgets", knowledge, mappings) == (None, 0.0, "no known alias is close")


def test_each_column_is_taken_once_by_its_best_match() -> None:
    columns = {
        "Price": ["12.99", "3.50"],
        "Retail Price": ["14.99", "4.00"],
        "Item": ["SKU-1", "SKU-2"],
        "Description": ["Chew Bone", "Fish Flakes"],
    }
    matches = match_columns("catalog", columns, load_knowledge(), vocabulary(), min_confidence=0.5)
    assert {m.source: m.canonical for m in matches} == {
        "Price": "list_price",
        "Item": "sku",
        "Description": "product_name",
    }  # 'Retail Price' is as good a list price, but a canonical column is taken once, by the first best


def test_a_broken_knowledge_file_names_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "suggest.yaml"
    path.write_text(
        "columns:\n  sales:\n    order_id: {kind: guid, names: [order]}\n  returns: {}\n"
        "value_hints:\n  status: {sold: shipped}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError) as error:
        load_knowledge(path, vocabulary())
    message = str(error.value)
    assert "columns.sales.order_id.kind: 'guid' is not one of" in message
    assert "columns.returns: not a feed" in message
    assert "columns.sales.sku: missing" in message
    assert "value_hints.status.sold: 'shipped' is not a canonical status value" in message
