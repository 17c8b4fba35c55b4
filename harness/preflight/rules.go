package preflight

// RuleInfo describes a rule for reports (SARIF's rules, rehearse
// preflight's help): what it finds and why it matters.
type RuleInfo struct {
	ID       string
	Severity Severity // its usual severity (a finding may say otherwise)
	Help     string
}

// Rules lists every rule id, in the order the README documents them.
var Rules = []RuleInfo{
	{RuleSudo, Error, "A script runs sudo: the upgrade user may have no sudo rights on the target host, and a password prompt hangs an unattended upgrade."},
	{RuleUnknownUnit, Error, "A systemctl or service call names a unit the target host does not have (a unit renamed since): the step fails, or silently does nothing."},
	{RuleScheduledTask, Warning, "The package edits a crontab, ships an /etc/cron* file or a systemd timer: a job that starts running on its own, in every copy of the host."},
	{RuleExternalEndpoint, Warning, "curl, wget, nc, a URL or a host outside the environment and its allow-list: a rehearsal (or a staging copy) that calls production."},
	{RuleCannotTell, Info, "Where the checks cannot see (a variable command name, eval, a file over the size limit, an unknown installed version): said, not guessed."},
	{RuleLockNoTimeout, Error, "A statement takes an ACCESS EXCLUSIVE lock (or rewrites the table) with no lock_timeout set before it: queued behind one long transaction, it stops every query on the table."},
	{RuleTableRewrite, Warning, "A column type change or a volatile default rewrites the whole table under ACCESS EXCLUSIVE: an outage as long as the table is large."},
	{RuleIndexNotConcurrent, Warning, "CREATE INDEX without CONCURRENTLY blocks writes to the table for the whole build."},
	{RuleConstraintNotValid, Warning, "A foreign key or check added without NOT VALID scans the table while holding a lock that blocks writes."},
	{RuleSetNotNull, Warning, "SET NOT NULL scans the table under ACCESS EXCLUSIVE unless a validated CHECK (col IS NOT NULL) proves it first."},
	{RuleBreakingChange, Warning, "A rename or drop that the old version, still running during the upgrade, depends on."},
	{RuleNoMigrationLock, Warning, "No advisory lock around the migration: two runs at once (a retried job, two hosts) apply it twice."},
	{RuleHardcodedCredential, Error, "A secret in a package file (gitleaks' rules): shipped to every host, artifact store and ticket the package reaches."},
	{RuleDeprecatedConfig, Error, "A configuration key the installed version removed (error) or deprecated (warning), by the deprecation matrix: the new version ignores or refuses it."},
	{RuleUnsupportedUpgrade, Error, "The installed version is not one the manifest's upgrades_from lists: the vendor never tested this path."},
	{RuleParseError, Error, "A file does not parse (SQL, a script, a configuration file): it was not checked; the others were."},
}
