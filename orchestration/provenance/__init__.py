"""Provenance: the deployment's signing key, the signed envelope beside each manifest, the
approval a run names, and the checks `nexus-reports provenance verify` runs."""
