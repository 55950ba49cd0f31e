"""Whether a published run's provenance is complete: its manifest names everything a reader
needs to trust the files, and the run verifies (pure: the caller reads the manifest and runs
`provenance verify`, services/provenance.verify_run, whose failed checks it passes in)."""

from __future__ import annotations

import re
from typing import Any

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _get(manifest: dict[str, Any], path: str) -> Any:
    value: Any = manifest
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# path in the manifest -> what it proves; a missing or empty value makes the provenance incomplete
REQUIRED = {
    "template.version": "template version",
    "template.content_hash": "template content hash",
    "dbt.manifest_sha256": "dbt manifest hash",
    "input_hash": "input hash",
    "gate_b": "gate results",
    "files": "file list",
}
PRESENT_EVEN_IF_EMPTY = {"source_watermarks": "watermarks", "metrics": "metric versions"}


def gaps(manifest: dict[str, Any] | None, failed_checks: list[str]) -> list[str]:
    """What is missing or wrong; [] when the provenance is complete (nothing missing, no check failed)."""
    if manifest is None:
        return ["no manifest"]
    missing = [what for path, what in REQUIRED.items() if _get(manifest, path) in (None, "", [], {})]
    missing += [what for key, what in PRESENT_EVEN_IF_EMPTY.items() if key not in manifest]
    for entry in manifest.get("files") or []:
        if not SHA256.match(str(entry.get("sha256", ""))):
            missing.append(f"sha256 of {entry.get('name', '?')}")
    return missing + list(failed_checks)
