#!/usr/bin/env bash
# The Docker side of make run: builds the image of docker/Dockerfile and runs the services of
# docker/compose.yaml (database, local Punk API, PostgREST, nginx, and the one-shot migrate that
# readies the database at every start) on make run's ports.
# Usage: docker/run.sh up|down|status|logs [SERVICE]|token ROLE [SECONDS]   (make docker = up)
# The secrets live in docker/.env (git-ignored, mode 600), made at the first `up`: the
# postgres password, PostgREST's login password and the JWT secret.  `down` keeps the data
# volume; `docker volume rm brewml_pgdata` drops it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$ROOT/scripts/lib.sh"
ENV_FILE=$HERE/.env

compose() { docker compose --project-directory "$HERE" -f "$HERE/compose.yaml" --env-file "$ENV_FILE" "$@"; }

secrets() {
  [ -s "$ENV_FILE" ] && return
  # a kept volume holds the old passwords: new ones would lock PostgREST and migrate out
  if docker volume inspect brewml_pgdata >/dev/null 2>&1; then
    echo "docker: $ENV_FILE is missing but the volume brewml_pgdata holds a database made with its secrets;" >&2
    echo "docker: put the file back, or drop the data with: docker volume rm brewml_pgdata" >&2
    exit 1
  fi
  (umask 077
   printf 'POSTGRES_PASSWORD=%s\nBREWML_AUTHENTICATOR_PASSWORD=%s\nBREWML_JWT_SECRET=%s\n' \
     "$(new_secret)" "$(new_secret)" "$(new_secret)" >"$ENV_FILE")
  echo "docker: made the secrets in $ENV_FILE"
}

up() {
  command -v docker >/dev/null || { echo "docker: the docker command is missing (Debian: apt-get install docker.io docker-compose-plugin, or Docker's own packages)" >&2; exit 1; }
  docker info >/dev/null 2>&1 || { echo "docker: no Docker engine answers; start it (systemctl start docker)" >&2; exit 1; }
  secrets
  # --pull: the newest postgres:15, so that the server matches the headers setup.sh installs
  compose build --pull
  compose up -d
  for _ in $(seq 120); do
    curl -fs -o /dev/null http://127.0.0.1:8080/ && break
    sleep 1
  done
  curl -fs -o /dev/null http://127.0.0.1:8080/ ||
    { echo "docker: nginx does not answer on 127.0.0.1:8080; docker/run.sh logs says why" >&2; exit 1; }
  cat <<MSG
brewml is running in Docker: PostgreSQL 15 on 127.0.0.1:5433 (database brewml), HTTP on 127.0.0.1:8080.
  connect:  psql "host=127.0.0.1 port=5433 dbname=brewml user=postgres"  (password: POSTGRES_PASSWORD in docker/.env)
  writes need a token:  TOKEN=\$(docker/run.sh token brewml_ingest)   (or brewml_admin)
  curl -X POST http://127.0.0.1:8080/SEN0001/fit -H "Authorization: Bearer \$TOKEN" -d '{"values": [10, 5, 6, 9]}'
  curl -X POST http://127.0.0.1:8080/SEN0001/predict -d '{"value": 10}'
  stop:     docker/run.sh down
MSG
}

# the secrets file, for every command but up
need_env() { [ -r "$ENV_FILE" ] || { echo "docker: cannot read $ENV_FILE: run docker/run.sh up first (as its owner)" >&2; exit 1; }; }

case ${1:-} in
  up) up ;;
  down) need_env; compose down ;;
  status) need_env; compose ps ;;
  logs) need_env; shift; compose logs "$@" ;;
  token)
    need_env
    key=$(sed -n 's/^BREWML_JWT_SECRET=//p' "$ENV_FILE")
    [ -n "$key" ] || { echo "docker: no BREWML_JWT_SECRET in $ENV_FILE" >&2; exit 1; }
    BREWML_JWT_SECRET=$key exec "$ROOT/scripts/http.sh" token "${2:?usage: docker/run.sh token ROLE [SECONDS]}" "${3:-3600}" ;;
  *) echo "usage: docker/run.sh up|down|status|logs [SERVICE]|token ROLE [SECONDS]" >&2; exit 2 ;;
esac
