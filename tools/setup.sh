#!/bin/sh
# Install the Debian packages Lethe needs (as root), then build.
set -eu
cd "$(dirname "$0")/.."
PKGS="build-essential pkg-config libopenblas-dev zlib1g-dev libcjson-dev libsvm-dev libpng-dev gnuplot-nox dataset-fashion-mnist python3 openmpi-bin libopenmpi-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
make -j"$(nproc)"
