# faxbridge: `make run` serves config.example.yaml; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The venv is rebuilt when the dependencies or their pinned versions change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
# `make run CONFIG=/etc/faxbridge/config.yaml`; by default config.yaml once you made one.
CONFIG ?= $(if $(wildcard config.yaml),config.yaml,config.example.yaml)
# Debian packages the tests and benchmarks drive: swaks (SMTP client), postfix (smtp-source
# only; no daemon is configured), poppler-utils, ghostscript, libtiff-tools, qpdf, fonts, and
# chromium (headless, for the web console test); tini and iproute2 (the Docker image's PID 1
# run in a PID namespace, the health check probed in a network namespace: tests/test_docker.py,
# tests/test_healthcheck.py).
DEB_PACKAGES := swaks libnet-ssleay-perl postfix poppler-utils ghostscript libtiff-tools qpdf fonts-dejavu-core chromium tini iproute2
# What the bridge itself converts with: headless LibreOffice (no GUI, no recommends) driven over
# UNO by Debian's python3 (python3-uno), and fonts metric-compatible with Office's defaults
# (Liberation: Arial/Times/Courier; Carlito: Calibri) so page breaks fall where Word put them.
DEB_PACKAGES += libreoffice-core-nogui libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui python3-uno fonts-liberation2 fonts-crosextra-carlito
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck pytest pytest-postgres system-deps bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP) system-deps
	$(BIN)/faxbridge serve -c $(CONFIG)

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check bridge tests $(wildcard bench)
	$(BIN)/ruff format --check bridge tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest -q

# The same suite against the PostgreSQL server (skipped with a notice when none answers).
pytest-postgres: $(STAMP) system-deps
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(PG_TEST_URL)', connect_timeout=3).close()" 2>/dev/null; then \
	  FAXBRIDGE_TEST_DB=$(PG_TEST_URL) $(BIN)/pytest -q; \
	else echo "pytest-postgres: no PostgreSQL at $(PG_TEST_URL); skipped"; fi

test: lint typecheck pytest pytest-postgres

bench: $(STAMP) system-deps
	$(BIN)/python bench/smtp_throughput.py
	$(BIN)/python bench/cover_page.py
	$(BIN)/python bench/office_conversion.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
