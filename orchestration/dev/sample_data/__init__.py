"""Deterministic sample SOC data, generated for `orchestration.dev.seed` (see its docstring)."""
