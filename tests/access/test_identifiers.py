"""The id rule (NFKC + ASCII, then the shape) without a database."""

from __future__ import annotations

import pytest

from orchestration.access import identifiers
from orchestration.errors import Invalid


@pytest.mark.parametrize("value", ["analyst@acme.example", "first.last+soc@sub.acme.example", "tenant_admin@acme.example",
                                   "svc:scheduler", "svc:late-data"])
def test_valid_principal_ids(value):
    assert identifiers.principal_id(value) == value


@pytest.mark.parametrize("value", ["", " ", "a@b", "@acme.example", "analyst@", "svc:", "svc:Upper", "user@acme..example",
                                   "Analyst@acme.example", "analyst@acme.example ", "x" * 250 + "@acme.example",
                                   "\u0430dmin@acme.example", "admin@\u0430cme.example", "ｓvc:x", "ﬁle@acme.example"])
def test_invalid_principal_ids(value):
    with pytest.raises(Invalid):
        identifiers.principal_id(value)


@pytest.mark.parametrize("value", sorted(identifiers.RESERVED))
def test_reserved_ids_may_be_actors_but_not_new_principals(value):
    assert identifiers.principal_id(value) == value
    with pytest.raises(Invalid, match="reserved"):
        identifiers.new_principal_id(value)


@pytest.mark.parametrize("value", ["acme", "globex", "a", "tenant_7", "x-y"])
def test_valid_tenant_ids(value):
    assert identifiers.tenant_id(value) == value


@pytest.mark.parametrize("value", ["", "*", "Acme", "acme\n", "-acme", "ac me", "\u0430cme", "ａcme", "acme\u200d",
                                   "a" * 64])
def test_invalid_tenant_ids(value):
    with pytest.raises(Invalid):
        identifiers.tenant_id(value)


def test_a_membership_is_a_tenant_or_every_tenant():
    assert identifiers.membership("*") == "*"
    assert identifiers.membership("acme") == "acme"
