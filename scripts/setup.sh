#!/usr/bin/env bash
# Installs everything uvs and its tests need on a fresh Debian machine, then builds.
# Idempotent; run as root (apt-get). Without root it skips the system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# Needed by uvsd and the tests (nftables guard, namespace labs, curl clients, tshark for pcapng tests,
# haproxy as a PROXY-protocol real server in the FULLNAT e2e test).
required=(nftables iproute2 tshark ethtool socat curl iputils-ping haproxy)
# Only for `uvs bench modes`: gcc builds its traffic tool; wrk, nginx-light, conntrack for the
# baselines (haproxy too, installed above). Best effort: a failure here is reported but does not stop the install.
bench=(gcc wrk nginx-light conntrack)

missing() {
  local out=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || out+=("$p"); done
  echo "${out[@]:-}"
}

need=$(missing "${required[@]}")
want=$(missing "${bench[@]}")
if [ -n "$need$want" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    if [ -n "$need" ]; then
      echo "setup: installing $need"
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
    fi
    if [ -n "$want" ]; then
      echo "setup: installing (benchmarks) $want"
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $want >/dev/null ||
        echo "setup: warning: could not install $want; 'uvs bench modes' needs them" >&2
    fi
  else
    echo "setup: not root, skipping system packages: $need $want" >&2
  fi
fi

npm install --no-audit --no-fund
npm run build
