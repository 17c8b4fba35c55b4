package main

import "os"

// The tests run the CLI, which appends its Markdown summary to
// $GITHUB_STEP_SUMMARY: under GitHub Actions that would be the real job
// summary. TestMain (main_test.go) builds the binary; this runs before it,
// so that no test inherits the variable. A test that wants it sets it.
func init() {
	os.Unsetenv("GITHUB_STEP_SUMMARY")
}
