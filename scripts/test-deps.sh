#!/usr/bin/env bash
# System packages the tests need, from Debian (never a downloaded binary): Chromium for the
# browser tests, PostgreSQL for the several-processes test (tests/test_postgres.py starts its
# own server in a temp dir). Installs what is missing when we are allowed to (root);
# otherwise says what to run.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} = 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian ${missing[*]} for the tests ..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "the tests need ${missing[*]}: run 'sudo apt-get install ${missing[*]}'" >&2
  exit 1
fi
