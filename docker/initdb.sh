#!/usr/bin/env bash
# Run once by the postgres image's entrypoint on an empty data volume (linked into
# /docker-entrypoint-initdb.d by docker/Dockerfile): the brewml extension and the api schema
# that PostgREST serves, as scripts/cluster.sh start and scripts/http.sh start make them on a
# local cluster, and the password PostgREST logs in with, since containers talk over TCP.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
: "${BREWML_AUTHENTICATOR_PASSWORD:?set it in docker/.env (docker/run.sh makes one)}"
psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-brewml}" \
  -v password="$BREWML_AUTHENTICATOR_PASSWORD" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS brewml;
\i $ROOT/http/api.sql
ALTER ROLE brewml_authenticator PASSWORD :'password';
SQL
echo "brewml: extension, api schema and PostgREST's login are ready in ${POSTGRES_DB:-brewml}"
