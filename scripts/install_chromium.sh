#!/usr/bin/env bash
# Headless Chromium for the end-to-end browser test. Needs root and Debian's packages; where it
# cannot be installed the browser test skips with a clear reason and everything else still runs.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
    || echo "could not install chromium; the browser test will be skipped"
else
  echo "chromium is absent and cannot be installed here; the browser test will be skipped"
fi
exit 0
