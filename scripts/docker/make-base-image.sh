#!/usr/bin/env bash
# Makes a Debian bookworm base image with Python 3.11 from debootstrap, for machines that reach
# no image registry. The rootfs is kept as a tarball, so later runs only `docker import` it.
# Like Debian's own slim images it holds no manual pages, documentation (the copyright files
# stay) or translations, and dpkg is told to leave them out of later installs: about 50 MB.
#
# Usage: scripts/docker/make-base-image.sh [TAG]     (as root; default tag below)
# Env:   MLCANARY_IMAGE_CACHE (default ~/.cache/mlcanary), DEBIAN_MIRROR (default: the first
#        deb.debian.org-style URI of this machine's apt sources, else deb.debian.org).
set -euo pipefail

tag="${1:-mlcanary/debian-python:bookworm-slim}"
docker=/usr/bin/docker
cache="${MLCANARY_IMAGE_CACHE:-$HOME/.cache/mlcanary}"
tarball="$cache/debian-bookworm-python-slim.tar"

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

mirror_from_apt() {
    # First URI serving the "bookworm" suite in deb822 or one-line sources.
    local uri
    uri=$(grep -hs -A3 '^URIs:' /etc/apt/sources.list.d/*.sources \
          | awk '/^URIs:/ {print $2; exit}')
    if [ -z "$uri" ]; then
        uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
              | awk '$3 ~ /^bookworm$/ {print $2; exit}')
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

if [ ! -s "$tarball" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "debootstrap needs root: sudo $0 $tag" >&2
        exit 1
    fi
    command -v debootstrap >/dev/null \
        || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
    mirror="${DEBIAN_MIRROR:-$(mirror_from_apt)}"
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm from $mirror ..." >&2
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >&2
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    find "$rootfs/usr/share/doc" -type l -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
        -exec rm -rf {} +
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    mkdir -p "$cache"
    tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
fi

"$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$tarball" "$tag" >&2
echo "$tag"
