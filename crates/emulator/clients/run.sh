#!/usr/bin/env bash
# Runs Microsoft's official client libraries (MSAL Node + Microsoft Graph JS client, from npm) against a
# freshly started emulator over HTTPS. Idempotent: installs its npm packages locally under clients/node.
# Exits non-zero on any failure; prints a PASS line on success.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

command -v node >/dev/null || { echo "FAIL: node is not installed" >&2; exit 1; }
cargo build --quiet --manifest-path "$root/Cargo.toml" -p m365-emulator --bin m365-emulator

work="$(mktemp -d)"
"$CARGO_TARGET_DIR/debug/m365-emulator" --bind 127.0.0.1:0 --tls --tls-cert-out "$work/ca.pem" --control-api >"$work/emulator.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

base=""
for _ in $(seq 1 200); do
  base="$(sed -n 's/^m365-emulator listening on \(https:\/\/[0-9.:]*\).*/\1/p' "$work/emulator.log" | head -n1)"
  [ -n "$base" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/emulator.log" >&2; echo "FAIL: emulator did not start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/emulator.log" >&2; echo "FAIL: emulator did not report its address" >&2; exit 1; }

cd "$here/node"
if [ ! -d node_modules/@azure/msal-node ] || [ ! -d node_modules/@microsoft/microsoft-graph-client ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
EMU_BASE="$base" NODE_EXTRA_CA_CERTS="$work/ca.pem" node check.mjs
