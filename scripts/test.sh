#!/usr/bin/env bash
# The whole test suite: lint, type-check, unit, integration, end-to-end and
# mediasoup's own conformance suite against our worker. Every stage runs even
# if an earlier one fails; the last line sums the tests in the form CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts

passed=0
failed=0
status=0
stage() { printf '\n=== %s ===\n' "$1"; }

# Static checks count as one test each so a lint failure is visible in the total.
check() {
  local name=$1; shift
  stage "$name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
}

# Runs mocha, echoing its output, and adds its "N passing / N failing" to the totals.
mocha_stage() {
  local name=$1; shift
  stage "$name"
  local out="test-artifacts/${name// /-}.log"
  npx mocha "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -Eo '^ +[0-9]+ passing' "$out" | grep -Eo '[0-9]+' | tail -1)
  f=$(grep -Eo '^ +[0-9]+ failing' "$out" | grep -Eo '[0-9]+' | tail -1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ "$rc" -ne 0 ]; then
    status=1
    # A crash before any test ran still counts as a failure.
    [ -z "${f:-}" ] && failed=$((failed + 1))
  fi
}

check "lint" npx eslint .
check "typecheck" npx tsc -p tsconfig.json --noEmit
check "docs up to date" node --import tsx scripts/gen-docs.ts --check
mocha_stage "unit" 'test/unit/**/*.test.ts'
mocha_stage "integration" 'test/integration/**/*.test.ts'
if compgen -G 'test/e2e/*.test.ts' >/dev/null; then
  mocha_stage "e2e" --timeout 180000 'test/e2e/**/*.test.ts'
fi

stage "mediasoup conformance"
out=test-artifacts/mediasoup-suite.log
node scripts/mediasoup-suite.mjs 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
p=$(grep -Eo 'Tests: .*' "$out" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' | tail -1)
f=$(grep -Eo 'Tests: .*' "$out" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' | tail -1)
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ "$rc" -ne 0 ]; then status=1; [ -z "${f:-}" ] && failed=$((failed + 1)); fi

echo
echo "tests: ${passed} passed, ${failed} failed"
exit $status
