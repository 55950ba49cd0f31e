"""The pure parts: nearest-rank percentiles and what makes a manifest's provenance complete."""

from __future__ import annotations

import copy

from orchestration.kpis import provenance
from orchestration.kpis.compute import Rate, Spread, percentile

COMPLETE = {"template": {"key": "t", "version": 2, "content_hash": "c" * 64}, "dbt": {"manifest_sha256": "d" * 64},
            "input_hash": "i" * 64, "gate_b": {"passed": True}, "source_watermarks": {}, "metrics": [],
            "files": [{"name": "r.csv", "sha256": "a" * 64}]}


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 21)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (10.0, 19.0, 20.0)
    assert percentile([7.0], 95) == 7.0
    assert Spread.of([3.0, 1.0, 2.0, 4.0]) == Spread(4, 2.0, 4.0, 4.0)
    assert Spread.of([]) == Spread(0, None, None, None)


def test_a_rate_without_a_denominator_has_no_value():
    assert Rate(0, 0).value is None
    assert Rate(1, 4).value == 0.25


def test_provenance_names_each_missing_item_and_every_store_problem():
    assert provenance.gaps(COMPLETE, []) == []
    assert provenance.gaps(None, []) == ["no manifest"]
    broken = copy.deepcopy(COMPLETE)
    del broken["source_watermarks"]
    broken["template"]["content_hash"] = ""
    broken["files"][0]["sha256"] = "not-a-digest"
    assert provenance.gaps(broken, ["k/r.csv: sha256 differs from the manifest"]) == [
        "template content hash", "watermarks", "sha256 of r.csv", "k/r.csv: sha256 differs from the manifest"]


def test_denial_texts_fall_into_bounded_categories():
    from orchestration.kpis.denials import category

    assert category("link expired at 2026-01-01T00:00:00+00:00") == "expired"
    assert category("revoked by a@b.example at 2026-01-01T00:00:00+00:00: leaked") == "revoked"
    assert category("run tenant acme differs from the link's globex") == "tenant_mismatch"
    assert category("run 0123abcd is expired") == "run_not_completed"
    assert category("method POST not allowed") == "method_not_allowed"
    assert category("bob@x.example is not a member of tenant acme") == "not_allowed"
    assert category("something new") == "other"
