"""`nexus-reports`: the command line of the product. This module only assembles the commands.

Each command group lives in its own module (cli/templates.py, cli/runs.py, ...), calls the use
cases in `services/`, and prints with the one table renderer (cli/tables.py). Refusals become one
line on stderr and exit 1 (cli/errors.py); usage errors, such as a number out of range, exit 2.
"""

from __future__ import annotations

import click

from orchestration.cli import (
    artifacts,
    audit,
    delivery,
    dev,
    evidence,
    kpis,
    links,
    metrics,
    pipelines,
    principals,
    provenance,
    runs,
    schedules,
    setup,
    templates,
    tokens,
)
from orchestration.cli.base import RootGroup


@click.group(cls=RootGroup, help="Nexus Reports: governed SOC reports from dbt metrics, run by Dagster.")
@click.version_option(package_name="nexus-reports", prog_name="nexus-reports")
def main() -> None:
    pass


for command in (*setup.COMMANDS, *dev.COMMANDS, runs.run_cmd, kpis.kpis_cmd):
    main.add_command(command)
for module in (templates, principals, tokens, runs, links, schedules, artifacts, delivery, audit, metrics,
               provenance, evidence, pipelines):
    main.add_command(module.group)


if __name__ == "__main__":  # after every command is registered
    main()
