"""`python -m orchestration.cli ...` behaves as the `nexus-reports` script."""

from orchestration.cli.main import main

if __name__ == "__main__":
    main(prog_name="nexus-reports")
