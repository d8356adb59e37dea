#!/usr/bin/env bash
# The steps CI runs once Node 24 and pnpm are on PATH. Kept apart from .ci/run so
# a developer can run the same steps on a machine that already has both.
set -euo pipefail
cd "$(dirname "$0")/.."

pnpm install --frozen-lockfile
# Debian's Chromium for the browser tests (playwright-core drives it; no browser download).
if [ ! -x /usr/bin/chromium ]; then
  echo "ci: installing chromium"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
# Deployment files: docker compose config, Dockerfile lint, shellcheck, systemd-analyze verify.
bash scripts/check-deploy.sh
# The README's test command:
pnpm test
# Benchmark smoke run: seconds long, figures only (no thresholds); peers that
# cannot be installed here are skipped and named in its output.
pnpm bench --quick
# The comparison tool reads what the run wrote (a crash here is a bench bug).
node bench/compare.ts bench/results/latest-quick.json bench/results/latest-quick.json >/dev/null
