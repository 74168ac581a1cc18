#!/usr/bin/env bash
# Debian packages the demo, benchmarks and tests use: prometheus (the real server the rollout
# controller queries; promtool checks the rendered alert rules), haproxy (the local router's data
# plane), redis-server (the shared feedback ledger's tests), wrk (the serving and router
# benchmarks' load generator), and docker.io, debootstrap and docker-registry (the container
# images are built on a locally made base image, run, and pushed to a registry on loopback).
# Installs only what is missing. Without root it says what to install instead: a failure in CI,
# a warning elsewhere (the tests that need a missing package then skip and say why).
set -euo pipefail

wanted=(prometheus haproxy redis-server wrk docker.io debootstrap docker-registry)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
