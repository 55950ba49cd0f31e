"""The link maker delivery uses when a caller passes none (the Dagster sensor, the CLI).

`make_link(run_id, fmt, principal_id, variant) -> url` is the secure-link service's job; until
it is wired here (set_link_maker at start-up, or by replacing `_link_maker`), a send that needs
a link fails transiently and is retried, so nothing goes out without a proper link.
"""

from __future__ import annotations

from collections.abc import Callable

LinkMaker = Callable[[str, str, "str | None", str], str]


class LinkServiceUnavailable(RuntimeError):
    pass


def _not_configured(run_id: str, fmt: str, principal_id: str | None, variant: str) -> str:
    raise LinkServiceUnavailable("no secure-link service is configured for delivery")


_link_maker: LinkMaker = _not_configured


def set_link_maker(fn: LinkMaker) -> None:
    global _link_maker
    _link_maker = fn


def make_link(run_id: str, fmt: str, principal_id: str | None, variant: str) -> str:
    return _link_maker(run_id, fmt, principal_id, variant)
