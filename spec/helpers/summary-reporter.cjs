// Prints one plain closing line per run, "jest: N passed, N failed, N skipped", after Jest's
// own summary, so a reader (or CI) sees at a glance how many tests ran and how many skipped.
'use strict'

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests
    process.stdout.write(
      `jest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`,
    )
  }
}

module.exports = SummaryReporter
