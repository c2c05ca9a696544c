#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing.
# Runs as root on CI and the developers' machines (apt-get works there).
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
for extra in "$@"; do
  case "$extra" in
    postgresql) command -v pg_ctlcluster >/dev/null || need+=(postgresql) ;;
    redis) command -v redis-server >/dev/null || need+=(redis-server) ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
