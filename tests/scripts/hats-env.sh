#!/usr/bin/env bash
# The Python reference of the HATS tests (tests/e2e/hats.rs): hats-import, LSDB and
# lsst-sphgeom (LSDB's polygon search), pinned, in target/hats-venv. Idempotent; the tests
# use target/hats-venv/bin/python unless STARFLOW_HATS_PYTHON names another Python.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/hats-venv
if ! "$venv/bin/python" -c "import hats_import, lsdb, lsst.sphgeom" 2> /dev/null; then
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    hats-import==0.11.1 lsdb==0.11.1 hats==0.11.1 lsst-sphgeom==30.2026.4000
fi
"$venv/bin/python" -c "import hats_import, lsdb; print('hats-import', hats_import.__version__, 'lsdb', lsdb.__version__)"
