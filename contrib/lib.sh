# shellcheck shell=bash
# Shared by contrib/run.sh and contrib/test.sh: install missing Debian
# packages and build weft in build/. Sourced from the repository root.

# shellcheck disable=SC2034 # used by the scripts that source this file
BUILD_PACKAGES="gcc make libc6-dev libev-dev libssl-dev libconfig-dev check
autoconf automake libtool pkg-config"

# What contrib/test.sh needs beyond the build: the tools of the integration
# tests (curl, wrk, ab from apache2-utils, ss from iproute2, promtool from
# prometheus) and, for the fuzz targets, clang with its libFuzzer runtime:
# libclang-rt-dev pulls in the one of the default clang (Debian 12:
# libclang-rt-14-dev, which ships libclang_rt.fuzzer), a package clang
# itself only recommends.
# shellcheck disable=SC2034
TEST_PACKAGES="python3 iproute2 procps util-linux prometheus curl wrk chromium
apache2-utils clang libclang-rt-dev"

# Install the named Debian packages that are not installed yet.
ensure_packages() {
    local missing=() p sudo=
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq &&
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Configure DIR (relative to the root) with the given flags the first time,
# then make: an up-to-date tree is not rebuilt.
build_in() {
    local dir=$1
    shift
    [ -x configure ] || ./autogen.sh || return 1
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        (cd "$dir" && ../configure "$@") || return 1
    fi
    make -C "$dir" -j"$(nproc)" >/dev/null || make -C "$dir"
}
