# Two commands for a fresh machine with Python 3.11 and make: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
MANIFEST := dbt_project/target/manifest.json
# The suite's results, for the evidence pack (`nexus-reports evidence build` reads the newest).
JUNIT ?= $(or $(NEXUS_HOME),.nexus)/evidence/junit.xml

.PHONY: install manifest demo dev test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

# dagster-dbt reads the dbt manifest when the definitions load; dbt parse needs no database.
$(MANIFEST): $(STAMP) $(shell find dbt_project -name '*.sql' -o -name '*.yml' | grep -v target/)
	$(BIN)/nexus-reports manifest

manifest: $(MANIFEST)

demo: $(MANIFEST)
	$(BIN)/nexus-reports demo

dev: $(MANIFEST)
	$(BIN)/nexus-reports dev

test: $(MANIFEST)
	$(BIN)/ruff check orchestration tests
	@mkdir -p $(dir $(JUNIT))
	$(BIN)/pytest -q --junitxml=$(JUNIT)

clean:
	rm -rf .nexus dbt_project/target dbt_project/logs
