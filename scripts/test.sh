#!/usr/bin/env bash
# Install everything the tests need and run them (the default, fast suite; `-m slow` runs the long one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh site,dev,ref,text,ml,mujoco
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped"
  else
    echo "note: /usr/bin/chromium missing (sudo apt-get install chromium); browser tests will be skipped"
  fi
fi
. .venv/bin/activate
# KenLM's lmplz, the n-gram oracle (tests skip, saying why, where it cannot be built). Built once, cached.
if ! python -c "import sys; from shiyan.text.kenlm_ref import find_lmplz; sys.exit(find_lmplz() is None)" 2>/dev/null; then
  timeout 1200 bash scripts/build_lmplz.sh > .lmplz-build.log 2>&1 \
    || echo "warning: could not build lmplz (see .lmplz-build.log); the KenLM oracle tests will be skipped"
fi
ruff check src tests
ruff format --check src tests
python -m pytest -n 2 --durations=15 "$@"
