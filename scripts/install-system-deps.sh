#!/usr/bin/env bash
# Debian packages the demo, benchmarks and end-to-end tests use: prometheus (the real server
# the rollout controller queries) and wrk (the load generator of the serving benchmark).
# Installs only what is missing; without root it says what to install instead.
set -euo pipefail

wanted=(prometheus wrk)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
