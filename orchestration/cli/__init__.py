"""The command line (click only): one module per command group, shared table rendering.

`nexus-reports ...` and `python -m orchestration.cli ...` run the same `main.main` group.
"""
