"""The state store: the last snapshot and health of each cluster, the events, the outbox,
the silences.

- `base`      the `Store` protocol every caller types against, and its row types
- `sqlite`    SQLite (the default; the only module that imports sqlite3), SQL in `sqlite_sql`
- `postgres`  PostgreSQL, for replicas sharing the clusters (psycopg is optional and
  imported only there and in `pg_leader`), SQL in `postgres_sql`
- `rows`      what both backends write and read back (JSON, events, outbox rows)
- `leadership` which replica polls which cluster (pure); `pg_leader` its PostgreSQL I/O
- `opening`   the store and leadership a config asks for
"""
