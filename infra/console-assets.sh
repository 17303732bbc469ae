#!/usr/bin/env bash
# Refreshes the console's third-party assets from the npm registry, at the pinned
# versions below. Their copies are committed (api/console/static/vendor/, and axe-core
# for the tests in tests/console/vendor/): the server needs no network and no build step
# at run time, and a reviewer sees exactly what is served. Run after changing a version.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX=htmx.org@2.0.11 SSE=htmx-ext-sse@2.2.4 SWAGGER=swagger-ui-dist@5.35.0 AXE=axe-core@4.14.1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$HTMX" "$SSE" "$SWAGGER" "$AXE" >/dev/null)
for tgz in "$work"/*.tgz; do mkdir -p "${tgz%.tgz}" && tar xzf "$tgz" -C "${tgz%.tgz}"; done
vendor=api/console/static/vendor
mkdir -p "$vendor" tests/console/vendor
cp "$work"/htmx.org-*/package/dist/htmx.min.js "$vendor/htmx.min.js"
cp "$work"/htmx.org-*/package/LICENSE "$vendor/htmx.LICENSE"
cp "$work"/htmx-ext-sse-*/package/dist/sse.min.js "$vendor/htmx-sse.min.js" 2>/dev/null || cp "$work"/htmx-ext-sse-*/package/sse.js "$vendor/htmx-sse.min.js"
cp "$work"/swagger-ui-dist-*/package/{swagger-ui-bundle.js,swagger-ui.css,favicon-32x32.png} "$vendor/"
cp "$work"/swagger-ui-dist-*/package/LICENSE "$vendor/swagger-ui.LICENSE"
cp "$work"/axe-core-*/package/axe.min.js tests/console/vendor/axe.min.js
cp "$work"/axe-core-*/package/LICENSE tests/console/vendor/axe.LICENSE
printf '%s\n' "# npm packages copied here by infra/console-assets.sh" "$HTMX" "$SSE" "$SWAGGER" > "$vendor/VERSIONS"
printf '%s\n' "# npm package copied here by infra/console-assets.sh" "$AXE" > tests/console/vendor/VERSIONS
echo "console-assets.sh: $HTMX $SSE $SWAGGER $AXE" >&2
