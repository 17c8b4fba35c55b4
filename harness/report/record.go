// Package report turns the records rehearse run leaves behind (one JSON
// file per scenario under out/timelines) into what people and CI read: a
// self-contained HTML report, JUnit with each scenario's timeline attached,
// and a Markdown summary. It merges the output directories of several
// shards into one report. It never runs anything: timelines are its only
// input.
package report

import (
	"strconv"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// Schema names the format of a Scenario record. A reader refuses records of
// another schema rather than guess.
const Schema = "rehearse.timeline/1"

// Scenario statuses, as godog reports them.
const (
	StatusPassed    = "passed"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	StatusUndefined = "undefined"
	StatusPending   = "pending"
)

// Scenario is everything one scenario left behind: where it is, how it
// ended, its steps, and its timeline. It is written as
// out/timelines/RecordName(feature, line, name).json.
type Scenario struct {
	Schema      string    `json:"schema"`       // Schema
	Feature     string    `json:"feature"`      // the feature file, slash-separated, as given to rehearse run
	FeatureName string    `json:"feature_name"` // the Feature: title
	Line        int       `json:"line"`         // the scenario's line, or its example row's for an outline
	Name        string    `json:"name"`
	Tags        []string  `json:"tags,omitempty"` // with their @
	Status      string    `json:"status"`         // Status*
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	RunID       string    `json:"run_id,omitempty"` // the environment's run id
	Shard       string    `json:"shard,omitempty"`  // "I/N" when run with --shard
	Steps       []Step    `json:"steps"`
	// Error is the failing step's error, whole (several lines at most);
	// FailedLine is that step's line (an outline's row line when the row
	// is what names the failure).
	Error      string    `json:"error,omitempty"`
	FailedLine int       `json:"failed_line,omitempty"`
	Logs       []LogTail `json:"logs,omitempty"`   // each container's last log lines, on failure
	Output     string    `json:"output,omitempty"` // the tail of the scenario's own progress output, on failure
	Kept       string    `json:"kept,omitempty"`   // how to reach a kept environment
	// Reproduce is the one command that reruns this scenario locally with
	// its environment kept on failure; set on every failed scenario.
	Reproduce string           `json:"reproduce,omitempty"`
	Events    []timeline.Event `json:"events"`
}

// Step is one Gherkin step of a scenario as it ran.
type Step struct {
	Keyword string    `json:"keyword"` // "Given ", "When ", ...
	Text    string    `json:"text"`
	Line    int       `json:"line"`
	Status  string    `json:"status"` // Status*
	Start   time.Time `json:"start,omitzero"`
	End     time.Time `json:"end,omitzero"`
	Error   string    `json:"error,omitempty"`
}

// LogTail is the end of one container's log.
type LogTail struct {
	Service string `json:"service"`
	Text    string `json:"text"`
}

// Duration is how long the scenario ran.
func (s Scenario) Duration() time.Duration { return s.End.Sub(s.Start) }

// Location is FEATURE:LINE, what rehearse run accepts to run it again.
func (s Scenario) Location() string { return s.Feature + ":" + strconv.Itoa(s.Line) }

// RunSchema names the format of a Run record.
const RunSchema = "rehearse.run/1"

// Run is OUT/run.json: what one rehearse run (one shard of a nightly, or
// the whole of it) set out to run. Merging checks it: the shards of one
// nightly share Digest and Count, and together name every shard once.
type Run struct {
	Schema   string   `json:"schema"`          // RunSchema
	Shard    string   `json:"shard,omitempty"` // "I/N"; empty for an unsharded run
	Digest   string   `json:"digest"`          // sha256 of every scenario's FEATURE:LINE before sharding, sorted, newline-joined
	Total    int      `json:"total"`           // scenarios before sharding
	Selected []string `json:"selected"`        // FEATURE:LINE of the scenarios this run was given, in run order
	Tags     string   `json:"tags,omitempty"`
	// Errors are the feature files the run could not read or parse, one
	// "FILE[:LINE]: message" each: their scenarios ran nowhere, so a report
	// with errors is not a green report.
	Errors []string `json:"errors,omitempty"`
	// Interrupted says the run was stopped (Ctrl-C, a cancelled CI job)
	// before every selected scenario ran: such a report is not green.
	Interrupted bool      `json:"interrupted,omitempty"`
	Args        []string  `json:"args"` // the command line, to say how it was run
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
}
