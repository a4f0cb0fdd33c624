// Sums vitest JSON reports (one per test run of `.ci/run`) and prints the plain closing line CI
// reads: "N passed, N failed, N skipped". Before it: one line per report, and the skipped tests by
// name (their names say why they skip), so a skip is never silent. The closing line stays last.
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

const MAX_LISTED_SKIPS = 30;

let passed = 0;
let failed = 0;
let skipped = 0;
const skippedNames = [];
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.log(`${file}: missing test report (the run did not finish)`);
    failed++;
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const p = report.numPassedTests ?? 0;
  const f = (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0);
  const s = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  const empty = report.numTotalTests === 0 ? 1 : 0;
  console.log(`${file}: ${p} passed, ${f + empty} failed, ${s} skipped${empty ? ' (ran no test)' : ''}`);
  passed += p;
  failed += f + empty;
  skipped += s;
  for (const suite of report.testResults ?? []) {
    for (const test of suite.assertionResults ?? []) {
      if (test.status === 'pending' || test.status === 'skipped' || test.status === 'todo') {
        const where = suite.name ? relative(process.cwd(), suite.name) : '?';
        skippedNames.push(`${where} > ${test.fullName ?? test.title}`);
      }
    }
  }
}
for (const name of skippedNames.slice(0, MAX_LISTED_SKIPS)) console.log(`skipped: ${name}`);
if (skippedNames.length > MAX_LISTED_SKIPS) {
  console.log(`skipped: … and ${skippedNames.length - MAX_LISTED_SKIPS} more`);
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
