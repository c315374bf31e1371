# Intelligence360: `make run` starts the demo, `make test` runs every test. Both install what is
# missing first. Build output lives outside the clone, in one fixed place that CI uses too, so a
# rebuild compiles only what changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

export CARGO_TARGET_DIR ?= $(HOME)/.cache/i360/target
FRONT_TARGET := $(CARGO_TARGET_DIR)/front
SITE := $(CARGO_TARGET_DIR)/site
SERVER_BIN := $(CARGO_TARGET_DIR)/debug/server
WASM := $(FRONT_TARGET)/wasm32-unknown-unknown/wasm-release/frontend.wasm
PG_PORT ?= 55432
# Under /tmp: the postgres user that runs the server cannot enter /root.
PG_DIR := /tmp/i360-test-postgres-$(PG_PORT)
NEXTEST_ARGS ?=

.PHONY: run test tools build build-server build-site lint test-rust test-clients test-e2e bench-sync bench-fresh bench-scale bench-pages clean-data help

help:
	@echo "make run    install what is missing, build, start the demo on http://127.0.0.1:3000"
	@echo "make test   install what is missing, build, run every test (Rust, SQLite + PostgreSQL, Playwright)"
	@echo "make bench-sync   the sync benchmark (release build): items/s into SQLite against a plain insert"
	@echo "make bench-fresh  freshness benchmark (release build, ~20 min): change notifications against 15-minute polling"
	@echo "make bench-scale  the release server against 1,000 mailboxes: round times, Graph requests, RSS, page load"
	@echo "make bench-pages  page speed of a release build: the settings page against /healthz"

tools:
	@./scripts/install-tools.sh

build: build-server build-site

# The server with its `demo` feature: `--demo` and the in-process emulator (`make run`, the
# Playwright tests). A release build leaves the feature off (scripts/check-release-deps.sh).
build-server:
	cargo build -p server --features demo

# The front end is built on its own (never with the server's `ssr` feature), then bound with
# wasm-bindgen, shrunk with wasm-opt and laid out next to the stylesheet and public files;
# finish-site.mjs gives the script, wasm and stylesheet content-hashed names, writes brotli and gzip
# copies, prints the sizes.
# wasm-opt is binaryen's from npm (end2end/package.json; Debian's is too old) and takes the wasm
# features from the section rustc writes. Its inlining and similar-function merging are skipped: they
# shrink the raw wasm but it compresses worse (wasm with brotli: none 394 KB, -Oz 432 KB, these 382 KB).
# It takes half a minute, so its output is kept for the next build of the same wasm.
WASM_OPT := end2end/node_modules/.bin/wasm-opt
WASM_OPT_FLAGS := -Oz --skip-pass=inlining-optimizing --skip-pass=merge-similar-functions
WASM_OPT_CACHE := $(CARGO_TARGET_DIR)/wasm-opt
build-site:
	cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release --target-dir $(FRONT_TARGET)
	rm -rf $(SITE).new && mkdir -p $(SITE).new/pkg $(WASM_OPT_CACHE)
	wasm-bindgen --target web --no-typescript --remove-name-section --out-dir $(SITE).new/pkg --out-name i360 $(WASM)
	key=$$(cat $(SITE).new/pkg/i360_bg.wasm <(echo '$(WASM_OPT_FLAGS)') | sha256sum | cut -c1-16); \
	  if [ ! -f $(WASM_OPT_CACHE)/$$key.wasm ]; then \
	    rm -f $(WASM_OPT_CACHE)/*.wasm; \
	    $(WASM_OPT) $(WASM_OPT_FLAGS) $(SITE).new/pkg/i360_bg.wasm -o $(WASM_OPT_CACHE)/$$key.tmp; \
	    mv $(WASM_OPT_CACHE)/$$key.tmp $(WASM_OPT_CACHE)/$$key.wasm; \
	  fi; \
	  cp $(WASM_OPT_CACHE)/$$key.wasm $(SITE).new/pkg/i360.wasm && rm $(SITE).new/pkg/i360_bg.wasm
	cp style/main.css $(SITE).new/pkg/i360.css
	cp -r public/. $(SITE).new/
	node scripts/finish-site.mjs $(SITE).new
	rm -rf $(SITE) && mv $(SITE).new $(SITE)

run: tools build
	$(SERVER_BIN) --demo --site-root $(SITE)

test: tools build
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-rust
	$(MAKE) --no-print-directory test-clients
	$(MAKE) --no-print-directory test-e2e

# Formatting (rustfmt.toml); licences, bans and sources (deny.toml; duplicate versions only warn;
# advisories are left out because their database cannot be fetched here); what a release build of
# the server contains (no emulator); Clippy per side (never `ssr` and `hydrate` together), where the
# workspace lints deny unwrap/expect/panic outside tests, and once more for the server without its
# `demo` feature, as a release build compiles it.
lint:
	cargo fmt --all --check
	cargo deny check --hide-inclusion-graph licenses bans sources
	./scripts/check-release-deps.sh
	cargo clippy -p domain -p store -p sync -p office365 -p server -p m365-emulator -p microsoft -p app --features app/ssr,server/demo --all-targets -- -D warnings
	cargo clippy -p server --no-default-features -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown --target-dir $(FRONT_TARGET) -- -D warnings

# The store suite runs on SQLite and on a throwaway PostgreSQL cluster started here.
test-rust:
	./scripts/test-postgres.sh start $(PG_DIR) $(PG_PORT)
	status=0; STORE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$(PG_PORT)/postgres STORE_TEST_REQUIRE_POSTGRES=1 \
	  cargo nextest run -p domain -p store -p sync -p office365 -p server -p m365-emulator -p microsoft -p app --features app/ssr,server/demo $(NEXTEST_ARGS) \
	  || status=$$?; ./scripts/test-postgres.sh stop $(PG_DIR); exit $$status

# Microsoft's own client libraries (MSAL Node and the Graph JS client) against the emulator.
test-clients:
	./crates/emulator/clients/run.sh

test-e2e:
	cd end2end && I360_SERVER_BIN=$(SERVER_BIN) I360_SITE_ROOT=$(SITE) npx playwright test

# The sync benchmark: the scheduler's own loop with the server's defaults. A first full sync against
# a bulk insert of the same rows into a fresh store database, a no-change round against the
# emulator's per-request floor (a load tool), and a first sync under Microsoft's limits scaled down,
# each with its ratio measured in the same run (release build; BENCH_MAILBOXES, BENCH_MESSAGES,
# BENCH_THROTTLE=0 to skip the minute under limits, BENCH_DATABASE_URL=postgres://… for PostgreSQL).
bench-sync:
	cargo run --release -p sync --example bench_sync

# The freshness benchmark: time from a change in the emulator to the item in the database, and
# Graph requests per idle mailbox per hour, with change notifications and with polling only, in one
# run (release build; BENCH_FRESH_MAILBOXES, BENCH_FRESH_CHANGES; BENCH_FRESH_POLL_MINUTES=1 for a
# quick run at a shorter polling interval; BENCH_FRESH_POSTGRES_URL for PostgreSQL instead of
# SQLite). Exits non-zero when issue 12's goals are missed.
bench-fresh:
	cargo run --release -p server --features demo --example bench_fresh

clean-data:
	rm -rf data

# The scale check: the release server binary against the emulator binary with 1,000 mailboxes in
# application-permissions mode; first round, a no-change round ("Sync now"), Graph requests, the
# server's peak RSS and the Team connections page's load time (BENCH_SCALE_MAILBOXES,
# BENCH_SCALE_MESSAGES).
bench-scale:
	cargo build --release -p server -p m365-emulator --bins
	cargo run --release -p server --example bench_scale

# Page speed of a release build as deployed (no demo): /healthz, the Office 365 settings page signed
# in as an admin and the brotli wasm bundle under load, with the page's same-run ratios to /healthz
# (BENCH_PAGES_CLIENTS, BENCH_PAGES_SECS; the site from make build-site).
bench-pages: build-site
	cargo build --release -p server --bin server
	cargo build --release -p server --example bench_pages
	$(CARGO_TARGET_DIR)/release/examples/bench_pages
