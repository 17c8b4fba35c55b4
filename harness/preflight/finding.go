package preflight

import (
	"cmp"
	"slices"
)

// Severity is how bad a finding is: an error fails preflight (exit 1),
// a warning and an info do not.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

// Finding is one hazard found in a package or its environment. Its JSON
// form is a public contract (rehearse preflight --format json).
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"` // slash path relative to the package root ("" for the environment)
	Line     int      `json:"line"` // 1-based; 0 when the finding is about the whole file
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`
}

// Rule ids: a public contract (feature files and CI filters name them).
const (
	RuleSudo                = "sudo"
	RuleUnknownUnit         = "unknown-unit"
	RuleScheduledTask       = "scheduled-task"
	RuleExternalEndpoint    = "external-endpoint"
	RuleCannotTell          = "cannot-tell"
	RuleLockNoTimeout       = "lock-no-timeout"
	RuleTableRewrite        = "table-rewrite"
	RuleIndexNotConcurrent  = "index-not-concurrent"
	RuleConstraintNotValid  = "constraint-not-valid"
	RuleSetNotNull          = "set-not-null"
	RuleBreakingChange      = "breaking-change"
	RuleNoMigrationLock     = "no-migration-lock"
	RuleHardcodedCredential = "hardcoded-credential"
	RuleDeprecatedConfig    = "deprecated-config"
	RuleUnsupportedUpgrade  = "unsupported-upgrade-path"
	RuleParseError          = "parse-error"
)

// File is one file of a package under check.
type File struct {
	Path string // slash path relative to the package root
	Data []byte
}

// Sort orders findings by file, line, rule and message, so that reports
// are stable.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
	})
}

// HasErrors says whether any finding is an error.
func HasErrors(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == Error })
}
