# Shared by the scripts that start brewml's local services (sourced, not run).
# Sets ROOT and VAR; as_pg runs a command as the postgres user when root.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# From /, since the postgres user may not be allowed into the current folder.
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# The state folder, $BREWML_VAR or var/ in the checkout.  When the checkout is
# somewhere the postgres user cannot reach (under /root, say), the state goes
# to /var/lib/brewml/<hash> and var/ links to it.
state_dir() {
  if [ -n "${BREWML_VAR:-}" ]; then
    VAR=$BREWML_VAR
  elif [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    VAR=/var/lib/brewml/$(printf %s "$ROOT" | md5sum | cut -c1-12)
    [ -e "$ROOT/var" ] || ln -s "$VAR" "$ROOT/var"
  else
    VAR=$ROOT/var
  fi
  mkdir -p "$VAR/run"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$VAR" "$VAR/run"; fi
}

# Whether something listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A new random secret: 48 bytes, base64 without the characters that URLs and sed mind.
new_secret() { head -c 48 /dev/urandom | base64 | tr -d '\n+/='; }
