"""The command and group classes every command of the CLI uses.

- Help lines are never cut off: a command's line in its group's `--help` is its first sentence,
  whole (click would truncate the help text at the terminal width with '...').
- Refusals from below become one line and exit 1 (errors.py), in one place: the root group.
- A usage error (a malformed or out-of-range option) is one line too, and exits 2: click's
  default prints the usage and a hint around it, which reads as several errors in a log.
"""

from __future__ import annotations

import sys

import click

from orchestration.cli.errors import EXIT_REFUSED, EXIT_USAGE, refusals, to_user_error


def first_sentence(text: str) -> str:
    paragraph = text.strip().split("\n\n", 1)[0].replace("\n", " ")
    return paragraph.split(". ", 1)[0].rstrip(".")


class Command(click.Command):
    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or first_sentence(self.help or "")


class Group(click.Group):
    command_class = Command
    group_class = type  # subgroups are Groups too

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or first_sentence(self.help or "")


class RootGroup(Group):
    """The `nexus-reports` group: maps every refusal of every command to one line."""

    group_class = Group

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except refusals() as exc:
            raise to_user_error(exc) from exc

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {' '.join(exc.format_message().split())}{where}", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_REFUSED)
        sys.exit(code if isinstance(code, int) else 0)
