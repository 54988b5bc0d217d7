# Shared by scripts/demo and scripts/test: Debian packages and a virtual environment.
# Usage: source scripts/_setup.sh EXTRAS "deb-package ..."
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

extras="$1"
debs="$2"
PYTHON="${PYTHON:-python3}"
# Debian's own Python keeps venv's pip bootstrap (ensurepip) in a package of its own.
if [ ! -x .venv/bin/python ] && ! "$PYTHON" -c "import ensurepip" 2>/dev/null; then
  debs="$debs python3-venv"
fi

missing=()
for pkg in $debs; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# What was installed, for which pyproject.toml, setup.py and C source: a second run with nothing
# changed starts at once. The `test` extras hold every other extra these scripts install.
stamp=.venv/.vigil-installed
deps="$(cat pyproject.toml setup.py src/vigil/fingerprint/*.c | sha256sum | cut -d' ' -f1)"
if ! grep -qxE "($extras|test) $deps" "$stamp" 2>/dev/null; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  echo "$extras $deps" >> "$stamp"
fi
