#!/bin/sh
# Run once by the postgres image on an empty data directory. Each service owns its own database as a
# role of its own (password from POSTGRES_<SERVICE>_PASSWORD): a service can read no other's data.
set -eu
for service in events signup notifications pages; do
  variable="POSTGRES_$(echo "$service" | tr a-z A-Z)_PASSWORD"
  password=$(printenv "$variable" || true)
  if [ -z "$password" ]; then
    echo "$variable must be set (python3 deploy/new-env.py makes one)" >&2
    exit 1
  fi
  psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set name="gather_$service" --set password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
