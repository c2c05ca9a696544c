#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing:
# Chromium (browser tests), PostgreSQL (the portal's tests run on it too) and
# Node.js (the browser code's unit tests, tests/js: Node's own runner) and npm (the
# OIDC provider the SSO tests run, tests/oidc: `npm ci` from its lock file), and
# systemd's systemd-analyze (the gatekeeper's unit file is verified, never started),
# nginx and openssl (the documented reverse proxy, run in front of a gatekeeper).
# redis-server: the Celery broker the tests run a real worker on (tests/celery_stack.py; the
# package's own service is not used, each test session starts its own on a free port).
# faketime: a gatekeeper process with a skewed wall clock (the verification's clock failure).
# Runs as root on CI and the developers' machines (apt-get works there).
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# systemd-analyze checks the self-hosted gatekeeper's unit (tests/gatekeeper/test_package.py)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# nginx runs docs/operations.md's reverse-proxy block in front of a gatekeeper
# (tests/gatekeeper/test_reverse_proxy.py); the package's own service is not started.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# openssl makes that test's TLS certificate
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
# faketime (libfaketime) runs a gatekeeper whose clock is skewed, for the onboarding
# verification's clock failure (tests/e2e/test_onboarding_verify.py)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
