#!/usr/bin/env bash
# The Docker side of make run: builds the image of docker/Dockerfile and runs the four services
# of docker/compose.yaml (database, local Punk API, PostgREST, nginx) on make run's ports.
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
  (umask 077
   printf 'POSTGRES_PASSWORD=%s\nBREWML_AUTHENTICATOR_PASSWORD=%s\nBREWML_JWT_SECRET=%s\n' \
     "$(new_secret)" "$(new_secret)" "$(new_secret)" >"$ENV_FILE")
  echo "docker: made the secrets in $ENV_FILE"
}

up() {
  command -v docker >/dev/null || { echo "docker: the docker command is missing (Debian: apt-get install docker.io docker-compose-plugin, or Docker's own packages)" >&2; exit 1; }
  docker info >/dev/null 2>&1 || { echo "docker: no Docker engine answers; start it (systemctl start docker)" >&2; exit 1; }
  secrets
  compose up -d --build
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

case ${1:-} in
  up) up ;;
  down) compose down ;;
  status) compose ps ;;
  logs) shift; compose logs "$@" ;;
  token)
    [ -s "$ENV_FILE" ] || { echo "docker: no $ENV_FILE yet; run docker/run.sh up" >&2; exit 1; }
    BREWML_JWT_SECRET=$(sed -n 's/^BREWML_JWT_SECRET=//p' "$ENV_FILE") \
      exec "$ROOT/scripts/http.sh" token "${2:?usage: docker/run.sh token ROLE [SECONDS]}" "${3:-3600}" ;;
  *) echo "usage: docker/run.sh up|down|status|logs [SERVICE]|token ROLE [SECONDS]" >&2; exit 2 ;;
esac
