# Corral — two commands: `make up` runs it, `make test` tests it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the tests drive (registry clients, container runtime) — installed when root.
APT_PACKAGES ?= skopeo crun runc busybox-static tini iptables iproute2 docker.io amazon-ecr-credential-helper curl awscli

.PHONY: up test venv deps apt bench coverage lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

deps: $(VENV)/.installed

up: deps
	$(BIN)/corral up

apt:
	@if [ -n "$(APT_PACKAGES)" ] && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	elif [ -n "$(APT_PACKAGES)" ]; then \
	  echo "not root: make sure these Debian packages are installed: $(APT_PACKAGES)"; \
	fi

test: deps apt
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Baselines live in their own venv: MiniStack pins a newer botocore than Corral does.
.venv-bench/bin/python:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q "moto[server]" ministack

bench: deps .venv-bench/bin/python
	BENCH_BASELINE_PYTHON=.venv-bench/bin/python $(BIN)/python bench/api_throughput.py
	$(BIN)/python bench/registry_throughput.py
	$(BIN)/python bench/tasks.py
	$(BIN)/python bench/services.py
	$(BIN)/python bench/inspector_findings.py
	$(BIN)/python bench/alb_proxy.py
	$(BIN)/python bench/rolling_update.py

coverage: deps
	$(BIN)/python -m corral.aws.coverage > docs/COVERAGE.md

lint: deps
	$(BIN)/python -m pip install -q ruff
	$(BIN)/ruff check corral tests bench

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache
