#!/usr/bin/env bash
# The whole suite, twice: on the embedded defaults (SQLite + embedded Redis), then on
# PostgreSQL + Redis at 127.0.0.1. The engine's own tests (tests/lipsync) touch neither a
# database nor Redis, so the second pass leaves them out instead of rendering everything twice.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PYTHONUNBUFFERED=1
mkdir -p artifacts
status=0

pass() {  # pass NAME COMMAND...: run one pytest pass; "no tests collected" (exit 5) is a failure too
  local name=$1; shift
  echo "=== pytest pass: $name"
  "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "pass '$name' collected no tests"; rc=1; fi
  if [ $rc -ne 0 ]; then echo "pass '$name' FAILED (exit $rc)"; status=1; fi
  return 0
}

echo "=== lint: ruff and mypy (pyproject.toml)"
if ! .venv/bin/ruff check .; then echo "ruff FAILED"; status=1; fi
if ! env -u DATABASE_URL -u REDIS_URL .venv/bin/mypy; then echo "mypy FAILED"; status=1; fi

rm -rf var/test
pass embedded env -u DATABASE_URL -u REDIS_URL VAR_DIR="$PWD/var/test" \
  "$PY" -m pytest tests --junitxml=artifacts/junit-embedded.xml

if bash .ci/services.sh; then
  rm -rf var/test-pg
  redis-cli -h 127.0.0.1 -p 6379 -n 0 flushdb >/dev/null; redis-cli -h 127.0.0.1 -p 6379 -n 1 flushdb >/dev/null; redis-cli -h 127.0.0.1 -p 6379 -n 2 flushdb >/dev/null
  pass postgres env DATABASE_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/mouthpiece}" \
    REDIS_URL="${PG_REDIS_URL:-redis://127.0.0.1:6379/0}" VAR_DIR="$PWD/var/test-pg" \
    "$PY" -m pytest tests --ignore=tests/lipsync --junitxml=artifacts/junit-postgres.xml
else
  echo "PostgreSQL/Redis pass could not start its services"; status=1
fi

[ $status -eq 0 ] && echo "ALL PASSES GREEN" || echo "SOME PASS FAILED"
exit $status
