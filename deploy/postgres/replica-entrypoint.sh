#!/bin/sh
# The streaming replica: on first start, clone the primary with pg_basebackup -R (which writes
# standby.signal and primary_conninfo), then run as a hot standby that follows it.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -q -h "$PRIMARY_HOST" -p "${PRIMARY_PORT:-5432}"; do
        echo "waiting for the primary at $PRIMARY_HOST"
        sleep 1
    done
    PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h "$PRIMARY_HOST" -p "${PRIMARY_PORT:-5432}" -U replicator \
        -D "$PGDATA" -R -X stream --checkpoint=fast
    chmod 0700 "$PGDATA"
fi
exec docker-entrypoint.sh postgres -c hot_standby=on
