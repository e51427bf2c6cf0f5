#!/usr/bin/env bash
# Install everything the tests need (Chromium + CJK font when root on Debian, the project with its
# test extras in .venv) and run the whole suite: lint, tests (browser tests included), eval, bench smoke,
# and the built wheel installed into a fresh venv (scripts/wheel_smoke.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null
fi
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q -e ".[test]"
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 ANONYMIZED_TELEMETRY=False
ruff check interviewer devtools tests app.py setup.py
# Build the notes index once; the tests copy it (INTERVIEWER_TEST_INDEX), eval and bench reuse it.
python -m interviewer --data-dir .ci-data index
export INTERVIEWER_TEST_INDEX="$PWD/.ci-data"
python -m pytest -q -rs "$@"  # -rs: every skip is printed with its reason
# The calibrated targets are part of the suite: eval exits non-zero below eval/targets.toml.
python -m interviewer --data-dir .ci-data eval all
python -m interviewer --data-dir .ci-data bench --quick
bash scripts/wheel_smoke.sh
