package report_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rehearse/rehearse/harness/report"
)

// Merge the output directories of two shards and write the reports, and
// the records, into a new directory.
func ExampleLoad() {
	r, err := report.Load(filepath.Join("testdata", "runs", "shard-1"), filepath.Join("testdata", "runs", "shard-2"))
	if err != nil {
		log.Fatal(err)
	}
	out, err := os.MkdirTemp("", "merged-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	if err := report.Write(out, r); err != nil {
		log.Fatal(err)
	}
	c := r.Counts()
	fmt.Printf("%d shards, %d scenarios: %d passed, %d failed, %d undefined\n", r.Shards(), c.Total, c.Passed, c.Failed, c.Undefined)
	for _, s := range r.Scenarios {
		fmt.Println(s.Location(), s.Status)
	}
	// Output:
	// 2 shards, 4 scenarios: 2 passed, 1 failed, 1 undefined
	// features/rollback.feature:8 passed
	// features/rollback.feature:15 undefined
	// features/upgrade.feature:12 passed
	// features/upgrade.feature:19 failed
}
