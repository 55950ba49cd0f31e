"""`nexus-reports evidence build`: the signoff evidence pack (Appendix A), generated from the system."""

from __future__ import annotations

from pathlib import Path

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.errors import UserError
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("evidence", cls=Group, help="The signoff evidence pack: nine documents generated from the code, the "
             "control schema, the test results and the benchmarks.")
def group() -> None:
    pass


@group.command("build", help="Write a dated folder with the nine documents as Markdown, one combined PDF and "
               "SHA256SUMS. Exits 1 when an item is missing or failing (the pack is still written; its signoff "
               "summary says what), unless --allow-incomplete.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="the folder the dated pack folder is made in")
@click.option("--period", default=None, help="YYYY-MM of the KPI baseline [default: the last complete month]")
@click.option("--junit", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="the test suite's JUnit XML [default: $NEXUS_HOME/evidence/junit.xml, which `make test` writes]")
@click.option("--allow-incomplete", is_flag=True, help="exit 0 even when an item is missing or failing")
@params.actor("a platform admin")
def build_cmd(out: Path, period: str | None, junit: Path | None, allow_incomplete: bool, actor: str) -> None:
    from orchestration.services import evidence

    with warehouse.connection() as conn:
        pack = evidence.build_pack(conn, evidence.PackRequest(actor=actor, out=out, period=period, junit=junit))
    echo_table([Column("#", right=True), Column("item"), Column("status"), Column("missing or failing")],
               [(i.document.item, i.document.title, i.document.status, "; ".join(i.document.problems) or "-")
                for i in pack.items], click.echo)
    click.echo(f"evidence pack for {pack.period}: {pack.folder} ({pack.pdf.name}, {pack.pages} pages)")
    if not pack.complete and not allow_incomplete:
        failing = ", ".join(f"{i.document.item} ({i.document.status})" for i in pack.items[:-1]
                            if i.document.status != "ok")
        raise UserError(f"the evidence pack is incomplete: items {failing}; see {pack.folder}/09_signoff_summary.md")
