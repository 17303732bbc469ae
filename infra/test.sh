#!/usr/bin/env bash
# The whole test suite: installs Hotline with its test tools, starts a real PostgreSQL
# (Debian's package), a real Apache Kafka (jars from Maven Central, KRaft) and a real
# Keycloak (keycloak-quarkus-dist from Maven Central) on loopback, and runs pytest. Extra arguments go to pytest (e.g. -k lifecycle).
# Benchmarks are separate: see the README's performance table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/bootstrap.sh test
# Quality gates first: a lint, format or type finding fails the run before any test.
echo "test.sh: ruff check, ruff format --check, mypy" >&2
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy --no-error-summary .
# kcat: the integrators' command-line consumer, used by one Kafka test.
command -v kcat >/dev/null || { apt-get update -qq && apt-get install -y -qq kcat; } || echo "test.sh: kcat not installed" >&2
# Debian's Chromium and Noto fonts (Latin, CJK, Arabic): the console's browser tests.
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -q "Noto Sans CJK" || ! fc-list | grep -q "Noto Naskh Arabic" || ! fc-list | grep -q "Noto Sans Arabic"; then
    { apt-get update -qq && apt-get install -y -qq chromium fonts-noto-core fonts-noto-cjk; } || echo "test.sh: chromium or fonts not installed" >&2
fi
# Keycloak (the OpenID Connect issuer of the identity tests) boots while the others start.
bash infra/keycloak.sh start >/dev/null & keycloak_start=$!
bash infra/postgres.sh start
bash infra/kafka.sh start
wait "$keycloak_start"
# A missing service is a failure in CI, not a skip (tests/conftest.py reads CI).
export HOTLINE_PG_PORT="${HOTLINE_PG_PORT:-55432}" HOTLINE_KAFKA_PORT="${HOTLINE_KAFKA_PORT:-59092}" HOTLINE_KEYCLOAK_PORT="${HOTLINE_KEYCLOAK_PORT:-58080}"
set +e
# The slowest tests are listed at the end, so a suite that grows slow shows where.
.venv/bin/python -m pytest -q -p no:warnings --durations=20 "$@"
status=$?
set -e
exit $status
