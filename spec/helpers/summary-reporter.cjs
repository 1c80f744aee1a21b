// After Jest's own summary: every skipped test with its full title (the skip reason is part of
// the describe title, e.g. "[skipped: deck is not installed ...]"; Jest's reporter does not
// print tests of a file it skipped whole), then one plain closing line per run,
// "jest: N passed, N failed, N skipped".
'use strict'

class SummaryReporter {
  constructor() {
    this.skipped = []
  }

  onTestResult(_test, result) {
    for (const t of result.testResults) {
      if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo')
        this.skipped.push(t.fullName)
    }
  }

  onRunComplete(_contexts, results) {
    const lines = this.skipped.map((name) => `skipped: ${name}\n`).join('')
    const skipped = results.numPendingTests + results.numTodoTests
    process.stdout.write(
      `${lines}jest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`,
    )
  }
}

module.exports = SummaryReporter
