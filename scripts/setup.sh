#!/usr/bin/env bash
# Set up embodia on a fresh Debian 12 machine with Python 3.11:
#   apt packages for headless rendering, a virtual environment in .venv, the package.
# Usage: bash scripts/setup.sh [--dev]     (--dev adds the test and lint tools)
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS=""
if [[ "${1:-}" == "--dev" ]]; then EXTRAS="[dev]"; fi

# 1. apt packages: Mesa EGL/OSMesa for MuJoCo, libusb for Open3D, lavapipe Vulkan for Open3D's renderer.
APT_PACKAGES=(python3-venv libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 libusb-1.0-0 libvulkan1 mesa-vulkan-drivers)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "[setup] apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. virtual environment. torch first: the CPU build; anything else asking for torch would pull a CUDA build.
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".${EXTRAS}"
echo "[setup] done: $(.venv/bin/python -c 'import embodia; print("embodia", embodia.__version__)')"
