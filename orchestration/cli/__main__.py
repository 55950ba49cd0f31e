"""`python -m orchestration.cli ...` behaves as the `nexus-reports` script."""

from orchestration.cli.main import main

main()
