#!/usr/bin/env bash
# Installs camworld on a fresh Debian machine: the headless GL packages the world renderer needs, then the
# package itself with torch pinned to the CPU build (never an unpinned torch: that is a multi-GB CUDA download).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
fi
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[dev]"
