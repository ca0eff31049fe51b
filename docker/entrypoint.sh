#!/bin/sh
# Every Mouthpiece container starts here: wait until PostgreSQL and Redis answer (compose's
# depends_on covers one host; on many hosts they may be elsewhere and restarting), then run
# the command. With MIGRATE_ON_START=1 it migrates first (the compose "migrate" service does
# this once per deploy instead, so web replicas never race each other).
set -eu
cd /app
python /app/docker/healthcheck.py --wait "${STARTUP_WAIT_SECONDS:-120}" --scope web
if [ "${MIGRATE_ON_START:-0}" = "1" ]; then
  python manage.py migrate --noinput
fi
exec "$@"
