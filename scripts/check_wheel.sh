#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it into a fresh environment outside the
# checkout, use the library with Streamlit absent, then add the [app] extra and render the app from the
# installed package (AppTest). Usage: bash scripts/check_wheel.sh [python]  (the dev venv's python builds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation . -w "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/camlab-*.whl)
python3 -m venv "$WORK/env"
# requirements.txt as constraints: the versions the tests use, nothing the wheel does not ask for.
"$WORK/env/bin/pip" install -q --disable-pip-version-check -c requirements.txt "$WHEEL"
cp scripts/wheel_smoke.py "$WORK/"
cd "$WORK"
env/bin/python wheel_smoke.py library
env/bin/pip install -q --disable-pip-version-check -c "$OLDPWD/requirements.txt" "$WHEEL[app]"
env/bin/python wheel_smoke.py app
env/bin/python wheel_smoke.py serve
