"""The cost model of finding and following (bench/finding.py) is what docs/capacity.md shows,
and the index design is the cheap one it claims to be."""

from __future__ import annotations

from pathlib import Path

from bench.finding import WORKLOADS, markdown_lines, model

CAPACITY = Path(__file__).resolve().parents[2] / "docs" / "capacity.md"


def test_capacity_md_shows_the_models_figures() -> None:
    # `make bench` writes it; until the next run the section must still match the model
    assert "\n".join(markdown_lines(30)) in CAPACITY.read_text(encoding="utf-8")


def test_bulk_search_by_number_costs_a_fraction_of_an_item_per_recipient() -> None:
    bulk = model(WORKLOADS[0])
    buckets = bulk["rows"]["search by number: recipient buckets"]
    assert buckets["wru"] <= 1_000_000 / 50  # 64 items of ~2 KB per 10,000 numbers
    assert buckets["usd"] * 20 < bulk["per_recipient_items_usd"]
    assert bulk["usd_per_million"] < 0.1  # within the gateway's $0.75 budget with room to spare


def test_the_reference_index_is_written_once_per_request() -> None:
    one_per_request = model(WORKLOADS[1])["rows"]["search by reference: ReferenceIndex (keys only)"]
    assert one_per_request["wru"] == 1_000_000
