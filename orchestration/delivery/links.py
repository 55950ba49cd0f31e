"""The link maker delivery uses: a secure link (orchestration/links/service.py) per file and recipient.

`make_link(run_id, fmt, principal_id, variant) -> url`. Links are created by the delivery
service account (svc:delivery, role executive in every tenant: it may download and receive
every standard template, and run none); the recipient principal must still be allowed to
receive the report, checked again at each download. Tests may swap the maker with
set_link_maker.
"""

from __future__ import annotations

from collections.abc import Callable

LinkMaker = Callable[[str, str, "str | None", str], str]


def secure_link(run_id: str, fmt: str, principal_id: str | None, variant: str) -> str:
    from orchestration.access import policy
    from orchestration.db import warehouse
    from orchestration.links.errors import LinkError
    from orchestration.services import links

    if not principal_id:
        raise LinkError("a link is for one principal: give the recipient ;principal=ID")
    with warehouse.connection() as conn:
        link = links.create(conn, links.NewLink(run_id, fmt, principal_id, policy.DELIVERY, variant))
    return link.url()


_link_maker: LinkMaker = secure_link


def set_link_maker(fn: LinkMaker) -> None:
    global _link_maker
    _link_maker = fn


def make_link(run_id: str, fmt: str, principal_id: str | None, variant: str) -> str:
    return _link_maker(run_id, fmt, principal_id, variant)
