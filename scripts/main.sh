#!/usr/bin/env bash
# The main job: install, reproduce the quick profile of every topic, build the site.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh site,ref,text,ml
. .venv/bin/activate
status=0
shiyan reproduce --profile quick || status=$?
shiyan site build --out site
echo
echo "Site built: open site/index.html, or run: .venv/bin/shiyan site serve  (http://127.0.0.1:8000/)"
exit $status
