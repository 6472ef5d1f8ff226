# PostgreSQL server binaries for the call-record store tests (tests/gateway/test_records_postgres.py
# starts a private cluster with initdb/pg_ctl in a temp dir, as the `postgres` user when root).
scripts/apt-install postgresql
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null
