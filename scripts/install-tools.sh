#!/usr/bin/env bash
# Installs what building and testing need and is missing; safe to run any number of times.
# Everything comes from the machine's registries: rustup components, crates.io, Debian, npm.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "==> $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else echo "need root for: $*" >&2; exit 1; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The wasm target for the front end.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The wasm-bindgen CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wbg_version"; then
  say "installing wasm-bindgen-cli $wbg_version (about 2 minutes)"
  # Not --locked: one of its locked dependency versions is missing from the reachable registry.
  cargo install wasm-bindgen-cli --version "$wbg_version" --force
fi

# cargo-nextest runs the Rust tests; the machine image normally has it.
if ! command -v cargo-nextest >/dev/null; then
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# rustfmt for `cargo fmt --all --check` in `make lint`.
if ! rustup component list --installed | grep -q '^rustfmt'; then
  say "adding the rustfmt component"
  rustup component add rustfmt
fi

# cargo-deny for `cargo deny check licenses bans sources` in `make lint`. Pinned: deny.toml is written
# for this version, and it builds with the machine's rustc 1.95. Built in its own target directory
# (not the workspace's, which the Makefile's CARGO_TARGET_DIR would give it), removed afterwards.
deny_version=0.20.2
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $deny_version"; then
  say "installing cargo-deny $deny_version (about 6 minutes)"
  deny_build=/tmp/i360-cargo-deny-build
  cargo install cargo-deny --version "$deny_version" --locked --force --target-dir "$deny_build"
  rm -rf "$deny_build"
fi

# Debian's Chromium for Playwright (Playwright's own browser download cannot work here).
if [ ! -x /usr/bin/chromium ]; then
  say "installing Chromium from Debian's packages"
  apt_install chromium
fi

# An emoji font, so the screenshots show the settings page's 🚨 warning as users see it.
if [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
  say "installing an emoji font from Debian's packages"
  apt_install fonts-noto-color-emoji
fi

# Node.js and npm for the Playwright tests.
if ! command -v npm >/dev/null; then
  say "installing Node.js and npm from Debian's packages"
  apt_install nodejs npm
fi

# The end-to-end test packages, reinstalled only when package-lock.json changes.
stamp=end2end/node_modules/.package-lock.stamp
if [ ! -f "$stamp" ] || ! cmp -s end2end/package-lock.json "$stamp"; then
  say "installing the end-to-end test packages"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  cp end2end/package-lock.json "$stamp"
fi
