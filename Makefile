# RemoteBank: `make run` starts the platform, `make test` runs the whole suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SDK := sdk/js
SDK_SOURCES := $(wildcard $(SDK)/src/*.ts $(SDK)/examples/*) $(SDK)/build.mjs $(SDK)/package.json

.PHONY: run test lint format install chromium banking-deps net-deps prometheus-deps alert-rules messages clean sdk-lint sdk-test

$(STAMP): requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	# OCR models in the package; --no-deps: it names opencv-python (clashes with the headless one)
	$(BIN)/pip install --quiet --no-deps rapidocr-onnxruntime==1.4.4
	touch $(STAMP)

install: $(STAMP) messages node_modules/.package-lock.json $(SDK)/dist/.built

# Browser libraries (sm-crypto) served as static files; node_modules is never committed.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts

# The H5 SDK (sdk/js): its own npm project (TypeScript, esbuild, eslint as dev tools).
$(SDK)/node_modules/.package-lock.json: $(SDK)/package.json $(SDK)/package-lock.json
	cd $(SDK) && npm ci --no-audit --no-fund --ignore-scripts

# The customer page runs on the SDK's build (/static/sdk/), made here from the committed
# sources; dist/ is never committed.
$(SDK)/dist/.built: $(SDK)/node_modules/.package-lock.json $(SDK_SOURCES)
	cd $(SDK) && npm run --silent build
	touch $@

# The SDK's lint and type check (in `make lint`), and its unit tests on node's own runner.
sdk-lint: $(SDK)/node_modules/.package-lock.json
	cd $(SDK) && npm run --silent lint && npm run --silent typecheck

sdk-test: $(SDK)/node_modules/.package-lock.json
	cd $(SDK) && npm test --silent

# Translations are compiled from the committed .po files (GNU gettext's msgfmt).
messages: $(STAMP)
	@command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext >/dev/null)
	$(BIN)/python manage.py compilemessages --ignore=.venv --verbosity 0

run: install banking-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python -m remotebank.stack

# Chromium for the browser tests, from Debian's packages (never downloaded by Playwright).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

# The shaped-link test and benchmarks/network.py: network namespaces, veths and tc tbf
# (iproute2), offloads off on the veths (ethtool), from Debian's packages.
net-deps:
	@command -v ip >/dev/null && command -v tc >/dev/null && command -v ethtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 ethtool >/dev/null)

# Monitoring: a real Prometheus and promtool (the alert rules' check and the scrape test of
# apps/monitoring), from Debian's packages.
prometheus-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null)

PROM_RULES := apps/monitoring/prometheus
alert-rules: prometheus-deps
	promtool check rules $(PROM_RULES)/rules.yml
	cd $(PROM_RULES) && promtool test rules rules_test.yml

# Banking: offline speech for scripted disclosures (media_worker/announce.py, espeak-ng) and the
# CJK font of receipts (apps/banking/receipts.py), both Debian packages.
banking-deps:
	@command -v espeak-ng >/dev/null && [ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng fonts-noto-cjk >/dev/null)

lint: $(STAMP) sdk-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install chromium banking-deps net-deps prometheus-deps lint sdk-test alert-rules
	@if [ -z "$$REDIS_URL" ]; then $(BIN)/python -m remotebank.embedded ensure-redis >/dev/null; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var $(SDK)/dist $(SDK)/build
