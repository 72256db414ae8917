#!/usr/bin/env bash
# Makes a Debian bookworm base image with python3 (3.11), pip and venv, from Debian's
# packages alone, for building the project's image where Docker Hub cannot be reached:
#
#   docker/build_local_base.sh [TAG]          # default tag: alexnet-tf-base:bookworm
#   docker build --build-arg BASE_IMAGE=alexnet-tf-base:bookworm -t alexnet-tf:cpu .
#
# Needs root, debootstrap and a running Docker daemon. Environment:
#   MIRROR          Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   HOST_CA_BUNDLE  CA bundle copied into the base so that pip and TLS in the container trust
#                   what this host trusts (default /etc/ssl/certs/ca-certificates.crt; set it
#                   empty to keep Debian's own bundle). A base made this way belongs to this
#                   machine: do not push it.
set -euo pipefail

tag=${1:-alexnet-tf-base:bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
ca_bundle=${HOST_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}

for tool in debootstrap docker tar; do
  command -v "$tool" >/dev/null || { echo "build_local_base.sh: $tool not found" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "build_local_base.sh: debootstrap needs root" >&2; exit 1; }

rootfs=$(mktemp -d /tmp/alexnet-tf-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

# minbase: dpkg, apt and essentials only; python3-venv brings ensurepip, which
# `python3 -m venv` needs.
debootstrap --variant=minbase \
  --include=python3,python3-pip,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror"

if [[ -n $ca_bundle ]]; then
  cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # pip inside a venv uses its own certifi bundle unless told otherwise.
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
fi

# Nothing below is needed at run time; it only makes the image bigger.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

tar --numeric-owner -C "$rootfs" -c . |
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["/bin/bash"]' \
    - "$tag"
docker run --rm "$tag" python3 -c 'import sys, venv, ensurepip; print("base ok: Python", sys.version.split()[0])'
