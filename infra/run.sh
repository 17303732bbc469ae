#!/usr/bin/env bash
# The product on the embedded default: SQLite event store and read models, DuckDB
# analytics, everything in ./data; demo data loaded on the first start; API on
# http://127.0.0.1:8000 (docs at /docs). Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/bootstrap.sh
# Debian's Noto fonts: the report charts are drawn in the reader's script (Chinese, Arabic).
if ! fc-list 2>/dev/null | grep -q "Noto Sans CJK" || ! fc-list | grep -q "Noto Sans Arabic"; then
    { apt-get update -qq && apt-get install -y -qq fonts-noto-core fonts-noto-cjk; } || echo "run.sh: Noto fonts not installed: Chinese and Arabic charts will miss glyphs" >&2
fi
# No SMS gateway on a laptop: citizens' sign-in codes are also written to the log.
export HOTLINE_LOG_SIGN_IN_CODES="${HOTLINE_LOG_SIGN_IN_CODES:-true}"
# Citizens' email: an SMTP listener on 127.0.0.1:2525 inside the server (README: Citizen channels).
export HOTLINE_EMAIL_IN_INPROCESS="${HOTLINE_EMAIL_IN_INPROCESS:-true}"
# The SMS provider's webhook secret, for trying POST /channels/sms/inbound by hand.
export HOTLINE_SMS_INBOUND_SECRET="${HOTLINE_SMS_INBOUND_SECRET:-demo-sms-secret}"
exec .venv/bin/hotline serve --demo "$@"
