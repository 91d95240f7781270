#!/usr/bin/env bash
# Installs everything uvs and its tests need on a fresh Debian machine, then builds.
# Idempotent; run as root (apt-get). Without root it skips the system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(nftables iproute2 tshark ethtool socat curl iputils-ping)
# `uvs bench modes`: gcc builds its traffic tool; wrk, nginx-light, haproxy, conntrack for the baselines.
pkgs+=(gcc wrk nginx-light haproxy conntrack)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: not root, skipping system packages: ${missing[*]}" >&2
  fi
fi

npm install --no-audit --no-fund
npm run build
