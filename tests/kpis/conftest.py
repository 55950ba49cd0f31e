"""The Reporting API over real HTTP for /metrics: the fixtures of tests/api, shared."""

from tests.api.conftest import api_base, api_clock, client, token_for  # noqa: F401
