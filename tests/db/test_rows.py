"""db.rows.from_row: the one way a typed record is built from a database row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from orchestration.db.rows import from_row
from orchestration.delivery.records import Delivery
from orchestration.links.records import Link
from orchestration.runs.run_record import RunRecord


@dataclass(frozen=True)
class Pair:
    left: int
    right: str = "default"


def test_unknown_columns_are_ignored_and_absent_ones_take_their_default():
    assert from_row(Pair, {"left": 1, "added_by_a_migration": "x"}) == Pair(1, "default")


def test_values_override_or_add_fields_and_must_name_fields():
    assert from_row(Pair, {"left": 1, "right": "db"}, right="given") == Pair(1, "given")
    with pytest.raises(TypeError, match="Pair has no field wrong"):
        from_row(Pair, {"left": 1}, wrong=2)
    with pytest.raises(TypeError):  # a required column missing is an error, not a silent None
        from_row(Pair, {"right": "x"})


def test_the_record_types_read_rows_through_it():
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    run = RunRecord.from_row({
        "run_id": "r1", "template_key": "t", "template_version": 1, "tenant_id": "acme",
        "window_start": dt.date(2026, 5, 1), "window_end": dt.date(2026, 6, 1), "formats": ["csv", "pdf"],
        "requester": "a", "trigger": "manual", "request": {}, "input_hash": "h", "state": "queued",
        "created_at": now, "a_column_the_record_does_not_name": 1})
    assert run.formats == ("csv", "pdf") and run.stage == "queued"
    delivery = Delivery.from_row({"delivery_id": 1, "run_id": "r1", "tenant_id": "acme", "channel": "email",
                                  "address": "a@acme.example", "status": "pending", "attempts": 0,
                                  "idempotency_key": "k", "config": None})
    assert delivery.config == {} and delivery.variant == "internal"
    link = from_row(Link, {"link_id": 3, "run_id": "r1", "variant": "internal", "format": "csv", "principal_id": "p",
                           "tenant_id": "acme", "created_by": "m", "created_at": now, "expires_at": now,
                           "token_sha256": "never a field"})
    assert link.link_id == 3 and not hasattr(link, "token_sha256")
    with pytest.raises(TypeError):  # records are read by attribute, not by key
        link["run_id"]  # noqa: B018
