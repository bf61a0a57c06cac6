#!/usr/bin/env bash
# Schemathesis (PyPI) against a running node's OpenAPI document: fails on any 5xx, any
# answer that does not match its schema or content type, any status the document does not
# list, and a wrong answer to an unsupported method. Bounded in examples and time, so CI
# stays short; scripts/dev-node.sh --exit --api-check runs it on the dev node after the
# walkthrough (what scripts/test.sh and CI do).
#
#   scripts/api-check.sh URL [BEARER_TOKEN]
#   API_CHECK_SECS=300 API_CHECK_EXAMPLES=100 scripts/api-check.sh http://127.0.0.1:8080
set -euo pipefail
cd "$(dirname "$0")/.."
URL=${1:?usage: scripts/api-check.sh URL [BEARER_TOKEN]}
TOKEN=${2:-}
ST=.tools/venv/bin/schemathesis
[ -x "$ST" ] || scripts/bootstrap.sh
args=(
  run "$URL/_grid/openapi.json" --url "$URL"
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,unsupported_method
  --max-examples "${API_CHECK_EXAMPLES:-25}"
  --max-time "${API_CHECK_SECS:-75}"
  --workers 1 --request-timeout 10 --seed 1
  --suppress-health-check all
  --generation-database none
  # The whole-process paths are the app's, not the API's; metrics are text by design.
  --exclude-path /_grid/metrics
  --no-color
)
if [ -n "$TOKEN" ]; then
  # Signed in: logging out would leave the rest of the run unauthenticated (that run is the
  # other one).
  args+=(-H "Authorization: Bearer $TOKEN" --exclude-path /_grid/v1/auth/logout)
fi
echo "api-check: schemathesis ${args[*]}" | sed "s/Bearer [^ ]*/Bearer …/"
exec "$ST" "${args[@]}"
