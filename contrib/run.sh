#!/usr/bin/env bash
# Install what is missing, build, and run weftd in the foreground on
# contrib/weft.conf (echo on 127.0.0.1:7007, TCP and UDP; http on
# 127.0.0.1:8080: contrib/www and /hello). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/lib.sh

# shellcheck disable=SC2086
ensure_packages $BUILD_PACKAGES
build_in build
exec build/weftd -c contrib/weft.conf "$@"
