#!/usr/bin/env bash
# What a release build of the server contains (`cargo build --release -p server`, no features): no
# Microsoft 365 emulator, so none of its demo tenants, well-known passwords and RSA private keys.
# The `demo` feature (`make run`, `make test`) brings the emulator in; a release build leaves it out.
#
# No `rsa` crate either (RUSTSEC-2023-0071, timing in private-key operations): the `microsoft` crate
# verifies Microsoft's id_token signatures and signs a certificate credential's client assertions
# (`--microsoft-certificate-file`) with ring; only the emulator and tests (dev-dependencies) use `rsa`.
#
# Run by `make lint`. The same queries with `--features demo` must find the emulator and its `rsa`,
# so this check cannot pass because a query found nothing at all.
set -euo pipefail
cd "$(dirname "$0")/.."

# Normal and build dependencies only (dev-dependencies never reach a release binary), for every
# target platform, one package per line.
packages() {
  cargo tree --quiet -p server --target all -e normal,build --prefix none --format '{p}' "$@" | awk '{ print $1 }' | sort -u
}
# The packages that depend on `rsa` directly.
rsa_dependents() {
  cargo tree --quiet -p server --target all -e normal,build --invert rsa --depth 1 --prefix none --format '{p}' "$@" |
    awk '$1 != "rsa" { print $1 }' | sort -u
}
has() { grep -qx "$1" <<<"$2"; }
fail() {
  echo "check-release-deps: FAILED: $*" >&2
  exit 1
}

# The control: with the demo, the queries do see the emulator and the rsa it signs with.
demo=$(packages --features demo)
has server "$demo" || fail "cargo tree listed no 'server' package; the query is broken"
has m365-emulator "$demo" || fail "with --features demo, cargo tree shows no m365-emulator; the query is broken"
has rsa "$demo" || fail "with --features demo, cargo tree shows no rsa; the query is broken"
has m365-emulator "$(rsa_dependents --features demo)" || fail "with --features demo, m365-emulator does not depend on rsa; the query is broken"

# A release build: what `cargo build --release -p server` resolves.
release=$(packages)
has server "$release" || fail "cargo tree listed no 'server' package; the query is broken"
if has m365-emulator "$release"; then
  cargo tree -p server --target all -e normal,build,features --invert m365-emulator >&2 || true
  fail "a release build of the server contains the Microsoft 365 emulator (above: what brings it in); keep it behind the 'demo' feature"
fi
if has rsa "$release"; then
  cargo tree -p server --target all -e normal,build,features --invert rsa >&2 || true
  fail "a release build of the server contains the rsa crate (RUSTSEC-2023-0071; above: what brings it in); sign and verify with ring"
fi

echo "check-release-deps: a release build of the server has no m365-emulator and no rsa"
