// Package preflight reads an upgrade package's hazards before anything
// runs: shell scripts (parsed with mvdan.cc/sh), SQL migrations (parsed
// with PostgreSQL's own parser), hard-coded credentials (gitleaks' rules),
// deprecated configuration keys and unsupported upgrade paths. Each rule
// is one small type in its own file; a Finding names the rule, severity,
// file, line, message and how to fix it.
package preflight
