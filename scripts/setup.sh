# Shared set-up for scripts/demo and scripts/test (sourced, not run).
# Installs what is missing, and only that: Debian packages (with sudo unless root), a .venv in
# the project root, and the project into it. Safe to run again; a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else
    command -v sudo >/dev/null || die "need root or sudo to run: $*"
    sudo "$@"
  fi
}

APT_UPDATED=0
apt_install() {  # apt_install PACKAGE... : installs those not yet installed
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "please install: ${missing[*]} (no apt-get on this machine)"
  say "installing system packages: ${missing[*]}"
  if [ $APT_UPDATED = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_python() {
  command -v "$PY" >/dev/null || apt_install python3
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Callbell needs Python 3.11 or newer; $PY is $("$PY" --version 2>&1)"
}

make_venv() {  # make_venv EXTRAS : .venv with the project installed (editable)
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$PY" -m venv "$VENV"
    fi
  fi
  # Reinstall only when pyproject.toml or the extras changed.
  local stamp="$VENV/.callbell-installed" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16) $extras"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    apt_install ca-certificates  # pip reaches PyPI over HTTPS; a minimal Debian has no CA list
    say "installing Callbell and its Python packages into .venv"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$ROOT${extras:+[$extras]}"
    echo "$want" > "$stamp"
  fi
}
