#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only those missing.
# Usage: scripts/deps.sh build|test|bench|fuzz ...
set -euo pipefail

build_pkgs="gcc make cmake pkg-config libsqlite3-dev libmicrohttpd-dev libgnutls28-dev libcurl4-gnutls-dev libmosquitto-dev nettle-dev libyajl-dev libinih-dev libcmocka-dev libzstd-dev libxxhash-dev zlib1g-dev"
test_pkgs="curl mosquitto python3-paho-mqtt python3-zstandard openssl python3 python3-pytest python3-requests python3-cryptography prometheus"
bench_pkgs="wrk openssl nginx-light gunicorn python3-flask uvicorn python3-uvloop python3-httptools python3-fastapi python3-pydantic util-linux procps libcjson-dev libjson-c-dev"

want=""
for t in "$@"; do
    case "$t" in
        build) want="$want $build_pkgs" ;;
        test) want="$want $build_pkgs $test_pkgs" ;;
        bench) want="$want $build_pkgs $bench_pkgs" ;;
        fuzz) want="$want $build_pkgs clang libclang-rt-14-dev" ;;
        *) echo "deps.sh: unknown set '$t'" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
