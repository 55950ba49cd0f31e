"""`nexus-reports provenance`: the signing key, and verifying a published run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from orchestration.cli.base import Group
from orchestration.cli.errors import UserError
from orchestration.db import warehouse


@click.group("provenance", cls=Group, help="Signed manifests: the deployment's public key, verifying a run, "
             "rerunning one to show it reproduces its bytes.")
def group() -> None:
    pass


@group.command("key", help="Print the public signing key (PEM) and its key id; --rotate makes a new current key "
               "(old public keys stay in the keyring: runs signed with them stay verifiable).")
@click.option("--rotate", is_flag=True, help="make a new current signing key")
def key_cmd(rotate: bool) -> None:
    from orchestration.services import provenance

    info = provenance.rotate_key() if rotate else provenance.ensure_key()
    if rotate:
        click.echo(f"rotated: new key {info.keyid}" + (f", {info.previous_keyid} kept in the keyring"
                                                         if info.previous_keyid else ""), err=True)
    click.echo(f"key id {info.keyid}")
    click.echo(info.pem, nl=False)


@group.command("verify", help="Check a published run: signature, manifest, every file's sha256 and size, and "
               "(online) the approved template content and the audit log's publish event. One line per check; "
               "exits 1 at the first failure.")
@click.argument("target", metavar="RUN|PATH|s3://...")
@click.option("--offline", is_flag=True, help="only what the files and a public key prove (no database)")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="the public key file (PEM) to verify with [default: this deployment's keyring]")
def verify_cmd(target: str, offline: bool, key_file: Path | None) -> None:
    from orchestration.services import provenance

    if offline:
        _report(provenance.verify_run(target, key_file=key_file))
        return
    with warehouse.connection() as conn:
        _report(provenance.verify_run(target, conn=conn, key_file=key_file))


def _report(checks) -> None:
    count = 0
    with contextlib.closing(checks):  # ended here, while its connection is still open
        for check in checks:
            click.echo(check.line)
            if not check.ok:
                raise UserError(f"provenance verification failed at {check.name}: {check.detail}")
            count += 1
    click.echo(f"verified: {count} checks passed")


@group.command("rerun", help="Render a published run's recorded request again (from its snapshot, or when that is "
               "gone from the warehouse) into a scratch folder, never publishing, and compare every file with the "
               "published one: one line per file (same / DIFFERS, with sha256s); exits 1 if any differs.")
@click.argument("run_id", metavar="RUN")
@click.option("--as", "actor", required=True, help="who reruns it (a principal that may run the report)")
@click.option("--into", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="keep the rerun's files in this empty folder (outside the artifact store) [default: discarded]")
def rerun_cmd(run_id: str, actor: str, into: Path | None) -> None:
    from orchestration.services import provenance

    with warehouse.connection() as conn:
        result = provenance.rerun_run(conn, run_id, actor=actor, into=into)
    origin = "its snapshot" if result.source == "snapshot" else "the warehouse (its snapshot is gone)"
    click.echo(f"rerun of run {run_id} from {origin}, generated_at {result.generated_at.isoformat()}")
    for moved in result.moved_watermarks:
        click.echo(f"note: source loaded since the run: {moved}")
    for compared in result.files:
        click.echo(compared.line)
    differing = [f.name for f in result.files if not f.same]
    if differing:
        raise UserError(f"the rerun of run {run_id} does not reproduce {len(differing)} of {len(result.files)} "
                        f"files: {', '.join(differing)}")
    click.echo(f"reproduced: {len(result.files)} files byte for byte")
