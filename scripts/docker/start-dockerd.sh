#!/usr/bin/env bash
# Starts dockerd in the background when no daemon answers, and waits for its socket.
#
# Containers here run on the host network only, so the daemon is started without a bridge and
# without iptables rules (neither is needed, and both fail on machines without the modules).
# overlay2 is tried first; where the kernel or the backing filesystem refuses it, vfs (slow,
# but it works everywhere) is used instead.
#
# Usage: scripts/docker/start-dockerd.sh      (as root)
# Env:   DOCKERD_LOG (default /var/log/mlcanary-dockerd.log), DOCKER_HOST_SOCKET
#        (default /var/run/docker.sock), DOCKERD_WAIT_S (default 60).
set -euo pipefail

docker=/usr/bin/docker
socket="${DOCKER_HOST_SOCKET:-/var/run/docker.sock}"
log="${DOCKERD_LOG:-/var/log/mlcanary-dockerd.log}"
wait_s="${DOCKERD_WAIT_S:-60}"

if "$docker" -H "unix://$socket" info >/dev/null 2>&1; then
    exit 0
fi
# Outside CI a machine that cannot start the daemon is not an error here: the image tests then
# skip and say why. In CI (CI=true) they must run, so it is.
cannot() {
    echo "$1" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
}
[ "$(id -u)" -eq 0 ] || cannot "dockerd is not running and only root can start it: sudo $0"
command -v dockerd >/dev/null || cannot "dockerd is not installed (apt-get install docker.io)"

start() {
    local driver=$1
    echo "starting dockerd with storage driver $driver; log: $log" >&2
    nohup dockerd --host "unix://$socket" --storage-driver "$driver" \
        --bridge none --iptables=false --ip6tables=false >>"$log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 "$wait_s"); do
        if "$docker" -H "unix://$socket" info >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "dockerd with $driver exited; see $log" >&2
            return 1
        fi
        sleep 1
    done
    echo "dockerd with $driver did not answer within ${wait_s}s; stopping it" >&2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
}

start overlay2 || start vfs || { tail -n 30 "$log" >&2; exit 1; }
"$docker" -H "unix://$socket" info --format 'dockerd ready: storage driver {{.Driver}}' >&2
