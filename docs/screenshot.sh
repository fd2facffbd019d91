#!/usr/bin/env bash
# Regenerates docs/screenshot.png: the task page of `udts-exporter demo`, in headless Chromium
# (Debian: apt-get install chromium). The demo runs for three minutes first so the sparklines
# have a few one-minute samples.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin udts-exporter
./target/release/udts-exporter demo --web.listen-address 127.0.0.1:19741 >/dev/null 2>&1 &
demo=$!
trap 'kill $demo' EXIT
sleep "${DEMO_SECONDS:-180}"
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1400,1150 --hide-scrollbars \
  --screenshot=docs/screenshot.png http://127.0.0.1:19741/
rm -rf "$profile"
