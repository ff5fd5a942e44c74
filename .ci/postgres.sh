#!/usr/bin/env bash
# A PostgreSQL server on 127.0.0.1:5432 with trust auth for the user postgres, for the
# tests of the PostgreSQL store and the replicas (tests/pg.py). Idempotent: a server that
# answers is left as it is (only its pg_hba.conf is checked); a Debian cluster that is
# installed but stopped is started; otherwise the postgresql package is installed.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  if ! ready; then
    echo "ci: installing PostgreSQL"
    # Debian's package would start the server through invoke-rc.d; we start it ourselves.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends postgresql >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
fi

if ready && ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "ci: a PostgreSQL server not managed here answers on 127.0.0.1:5432; using it"
  exit 0
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
conf=/etc/postgresql/$version/main
# Trust for the tests' user over TCP on the loopback address only, before any other rule.
if ! grep -qE '^host\s+all\s+postgres\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all postgres 127.0.0.1/32 trust' "$conf/pg_hba.conf"
  changed=1
fi
if ! ready; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do ready && break; sleep 1; done
elif [ "${changed:-0}" = 1 ]; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
ready || { echo "ci: PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -tAc 'SELECT 1' >/dev/null
echo "ci: PostgreSQL $version ready on 127.0.0.1:5432"
