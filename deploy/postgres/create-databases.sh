#!/bin/sh
# Run once by the postgres image on an empty data directory: one database per service, owned by
# the application role. `clustergov migrate` then creates the tables (and would create a missing
# database too, if the role may).
set -eu
for service in alliance land trusteeship finance commerce ranking; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "CREATE DATABASE \"clustergov_${service}\" OWNER \"${POSTGRES_USER}\""
done
