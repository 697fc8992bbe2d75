#!/usr/bin/env bash
# Brings the database to this image's brewml, as scripts/cluster.sh start and scripts/http.sh
# start do on a local cluster: the extension created or updated, the api schema that PostgREST
# serves (re-applied, like every local start), and the password PostgREST logs in with, since
# containers talk over TCP.  Idempotent; the migrate service of docker/compose.yaml runs it at
# every `up`, before PostgREST starts, so a rebuilt image updates an existing volume.
# Needs BREWML_AUTHENTICATOR_PASSWORD, and psql's connection in PG* (the compose file's).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
: "${BREWML_AUTHENTICATOR_PASSWORD:?set it in docker/.env (docker/run.sh up makes one)}"
psql -X -q -v ON_ERROR_STOP=1 -v password="$BREWML_AUTHENTICATOR_PASSWORD" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS brewml;
ALTER EXTENSION brewml UPDATE;
\i $ROOT/http/api.sql
ALTER ROLE brewml_authenticator PASSWORD :'password';
SQL
echo "brewml $(psql -X -qtAc "SELECT extversion FROM pg_extension WHERE extname = 'brewml'"), the api schema and PostgREST's login are ready in ${PGDATABASE:-brewml}"
