#!/usr/bin/env bash
# Build KenLM's lmplz (and query, build_binary) from the kenlm 0.3.0 source distribution.
#
# The `kenlm` wheel on PyPI holds only the query module; the estimator lmplz is C++ and needs
# cmake, a C++ compiler and Debian's boost/compression dev packages. The binaries go to
#   $SHIYAN_DATA_DIR/tools/kenlm/bin   when SHIYAN_DATA_DIR is set, else
#   ~/.cache/shiyan/lmplz/bin
# which is where shiyan.text.kenlm_ref.find_lmplz() looks (after $KENLM_BIN and PATH).
#
# Usage: scripts/build_lmplz.sh [SOURCE_DIR]
#   SOURCE_DIR: an unpacked kenlm-0.3.0 sdist; default: /tmp/kenlm_src/kenlm-0.3.0 if present,
#   else `pip download kenlm==0.3.0 --no-binary :all: --no-deps` into a temporary folder.
set -euo pipefail

VERSION=0.3.0
if [[ -n "${SHIYAN_DATA_DIR:-}" ]]; then
  PREFIX="$SHIYAN_DATA_DIR/tools/kenlm"
else
  PREFIX="$HOME/.cache/shiyan/lmplz"
fi
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

if [[ -x "$PREFIX/bin/lmplz" && "${FORCE:-0}" != 1 ]]; then
  echo "lmplz already built: $PREFIX/bin/lmplz (FORCE=1 to rebuild)"
  exit 0
fi

# 1. System packages (Debian names). Installed only when missing and we are root.
PKGS=(cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev
      zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if (( ${#missing[@]} )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

# 2. The source.
SRC="${1:-}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [[ -z "$SRC" ]]; then
  if [[ -f /tmp/kenlm_src/kenlm-$VERSION/CMakeLists.txt ]]; then
    SRC=/tmp/kenlm_src/kenlm-$VERSION
  else
    PY="${PYTHON:-python3}"
    "$PY" -m pip download "kenlm==$VERSION" --no-binary :all: --no-deps -d "$WORK/dl"
    tar -xzf "$WORK"/dl/kenlm-"$VERSION".tar.gz -C "$WORK"
    SRC="$WORK/kenlm-$VERSION"
  fi
fi
[[ -f "$SRC/CMakeLists.txt" ]] || { echo "not a kenlm source tree: $SRC" >&2; exit 1; }

# 3. Configure and build only the command-line tools we need.
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 -DCOMPILE_TESTS=OFF \
  -DENABLE_PYTHON=OFF -DENABLE_INTERPOLATE=OFF >"$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$WORK/build" -j "$JOBS" --target lmplz query build_binary

mkdir -p "$PREFIX/bin"
cp "$WORK/build/bin/lmplz" "$WORK/build/bin/query" "$WORK/build/bin/build_binary" "$PREFIX/bin/"
echo "built: $PREFIX/bin/lmplz"
