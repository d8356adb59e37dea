#!/usr/bin/env bash
# Checks of the deployment files that need no Docker engine and no systemd
# running (CI runs this before the tests; a developer can too):
#   - docker-compose.yml resolves: `docker compose config` (the Compose v2
#     plugin) where installed, else `docker-compose config` (Debian's
#     docker-compose 1.29, the only Compose that Debian bookworm packages),
#     with and without the `oidc` profile;
#   - the Dockerfiles pass `pnpm lint:deploy` (dockerfile-utils + project rules);
#   - the container scripts in deploy/docker pass shellcheck;
#   - the systemd units pass `systemd-analyze verify`, in a scratch root
#     where the programs they start exist, and any warning fails.
# Missing tools come from Debian's packages when running as root (CI);
# otherwise the script says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  missing+=(docker-compose)
fi
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "check-deploy: missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "check-deploy: installing ${missing[*]} from Debian"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ ${#compose[@]} -gt 0 ] || compose=(docker-compose)
fi

echo "check-deploy: ${compose[*]} config ($("${compose[@]}" version 2>/dev/null | head -n 1))"
# Only the defaults of docker-compose.yml: no .env or DRAWBRIDGE_* of this shell.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
env -i PATH="$PATH" HOME="$scratch" "${compose[@]}" --project-directory . -f docker-compose.yml config -q
env -i PATH="$PATH" HOME="$scratch" "${compose[@]}" --project-directory . -f docker-compose.yml --profile oidc config -q

echo "check-deploy: Dockerfiles"
pnpm --silent lint:deploy

echo "check-deploy: shellcheck deploy/docker"
shellcheck --shell=sh deploy/docker/*

echo "check-deploy: systemd-analyze verify deploy/systemd"
root="$scratch/root"
mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp -a /lib/systemd/system "$root/usr/lib/systemd/"
for program in drawbridge-relay drawbridge-connector; do
  printf '#!/bin/sh\n' >"$root/usr/local/bin/$program"
  chmod 0755 "$root/usr/local/bin/$program"
done
units=()
for unit in deploy/systemd/*.service; do
  cp "$unit" "$root/etc/systemd/system/"
  units+=("$root/etc/systemd/system/$(basename "$unit")")
done
# verify exits 0 on unknown keys and bad values ("…, ignoring"): any output fails.
report=$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1) || { echo "$report" >&2; exit 1; }
if [ -n "$report" ]; then
  echo "$report" >&2
  exit 1
fi
echo "check-deploy: ok"
