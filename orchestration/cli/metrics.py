"""`nexus-reports metrics`: the metric dictionary, read from the dbt manifest."""

from __future__ import annotations

import click

from orchestration.cli.base import Group
from orchestration.cli.errors import UserError


@click.group("metrics", cls=Group, help="The metric dictionary (from the dbt manifest).")
def group() -> None:
    pass


@group.command("list", help="Every metric: id, model version, owner, formula, and the templates that use it.")
def list_cmd() -> None:
    from orchestration.metrics import dictionary as metric_docs

    for e in metric_docs.dictionary():
        version = f"v{e['model_version']}" if e["model_version"] is not None else "-"
        click.echo(f"{e['id']:<28} {e['model']} {version:<4} owner={e['owner']}  formula v{e['formula_version']}: {e['formula']}")
        click.echo(f"{'':<28} unit={e['unit']} grain={e['grain']} templates={', '.join(e['templates']) or '-'}")


@group.command("doc", help="Write docs/metric-dictionary.md (or, with --check, fail when it is stale).")
@click.option("--check", is_flag=True, help="only check that the file is current")
def doc_cmd(check: bool) -> None:
    from orchestration.metrics import dictionary as metric_docs

    text = metric_docs.render_markdown(metric_docs.dictionary())
    path = metric_docs.DOC_PATH
    if check:
        if not path.exists() or path.read_text() != text:
            raise UserError(f"{path} is stale: run `nexus-reports metrics doc` and commit it")
        click.echo(f"{path} is current")
        return
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    click.echo(f"wrote {path}")
