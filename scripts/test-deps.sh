#!/usr/bin/env bash
# System packages the browser tests need (Debian's Chromium; never a downloaded browser).
# Installs them when missing and we are allowed to (root); otherwise says what to run.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian chromium for the browser tests ..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "browser tests need /usr/bin/chromium: run 'sudo apt-get install chromium'" >&2
  exit 1
fi
