// Package preflight reads an upgrade package's hazards before anything
// runs: shell scripts (parsed with mvdan.cc/sh), SQL migrations (parsed
// with PostgreSQL's own parser), hard-coded credentials (gitleaks' rules),
// deprecated configuration keys and unsupported upgrade paths. Each rule
// is one small type in its own file; a Finding names the rule, severity,
// file, line, message and how to fix it.
//
// Check walks an opened package (harness/upgrade's workspace; links never
// followed, bounded by Limits) and runs every rule on the files that are
// its business; an Inventory (FromEnvironment for a running environment,
// FromImages for a planned one) adds the environment: its hosts, units,
// installed version and configuration files. A Matrix is the deprecation
// matrix. ToSARIF and WriteJSON are the report formats.
//
// # Shell
//
// CheckScript parses a script with mvdan.cc/sh/v3/syntax (bash dialect)
// and looks at every simple command, wherever it is: function bodies,
// subshells, pipelines, $(...), if/while/for/case bodies. Wrappers are
// looked through (env, nohup, timeout N, xargs, exec, command, time, nice,
// flock, sudo, find -exec), and scripts inside scripts are parsed in turn
// with their own lines: the string of bash -c, sh -c, su -c and flock -c,
// eval's literal arguments, ssh's remote command, a heredoc or here-string
// fed to a shell, su or ssh. A heredoc that is only data (cat > f <<EOF)
// is not a script, but its $(...) run and are checked; a crontab written
// from a heredoc or by echo has its jobs checked. Variables the script
// sets once, at its top level, to a literal are followed.
//
// The rules: sudo (sudo, doas, su, runuser, pkexec: run the step as its
// manifest user instead); unknown-unit (systemctl VERB UNIT..., service
// UNIT VERB naming a unit the host's inventory lacks; billing-api means
// billing-api.service, foo@bar.service counts when foo@.service is there;
// globs, --user and other hosts are not judged); scheduled-task (crontab
// FILE/-e/-, writes and copies into /etc/cron* and /var/spool/cron,
// timers enabled, started or copied into a unit directory, systemd-run
// --on-*, at); external-endpoint (curl, wget, nc, ssh, scp, rsync, psql -h
// and other database clients aimed at a host that is not the
// environment's, loopback, or allowed; ".example.com" allows the domain
// and its subdomains); cannot-tell where the parser cannot see (a command
// named by a variable or $(...), eval or bash -c of a run-time string, a
// script sourced from outside the package, a shell fed from a pipe, a
// unit or host only known at run time); parse-error for a script that does
// not parse, alone. CheckScheduledFile reads a shipped crontab (each job a
// scheduled-task, its command checked as a script on its line), a
// cron.daily-style script or a *.timer.
//
// # SQL
//
// CheckSQL (CheckSQLWith for another PostgreSQL version, or a migration
// tool that wraps each file in one transaction) parses a migration with
// PostgreSQL's own parser (github.com/pganalyze/pg_query_go/v6, the
// PostgreSQL 17 grammar) and replays it statement by statement: open
// transaction, lock_timeout (SET, SET LOCAL, set_config, RESET, undone by
// ROLLBACK), the locks the transaction already holds, and the tables,
// indexes and column types the file itself made. Each statement's locks
// follow PostgreSQL's lock table ("Explicit Locking", 13.3.1) and ALTER
// TABLE's per-subcommand levels (AlterTableGetLockLevel): ACCESS EXCLUSIVE
// for most ALTER TABLE forms, DROP, TRUNCATE, VACUUM FULL, CLUSTER; SHARE
// UPDATE EXCLUSIVE for VALIDATE CONSTRAINT, SET STATISTICS, CREATE INDEX
// CONCURRENTLY; SHARE for CREATE INDEX; SHARE ROW EXCLUSIVE for ADD
// FOREIGN KEY (on both tables) and CREATE TRIGGER. A finding's line is its
// statement's, or its ALTER TABLE subcommand's, from the parser's byte
// locations (and the scanner's, for subcommands). A table made by the same
// file is nobody else's yet, so it is exempt from every rule.
//
// The rules: lock-no-timeout (error: an ACCESS EXCLUSIVE lock, which every
// rewrite takes, waited for with no lock_timeout); table-rewrite;
// index-not-concurrent; constraint-not-valid (also VALIDATE in the same
// transaction as its NOT VALID add, and UNIQUE / PRIMARY KEY without
// USING INDEX); set-not-null (SET NOT NULL with no validated CHECK to
// prove it, ADD COLUMN NOT NULL with no default); breaking-change;
// no-migration-lock; cannot-tell (info) for DO blocks that change tables
// and for CALL, whose insides are not followed; parse-error (error) at the
// parser's cursor, the statements around it still checked. Measured
// against squawk's own test cases (squawk_test.go): precision 0.96, recall
// 0.98 on the 101 cases of the 18 squawk rules ours cover.
//
// Why pg_query_go (cgo) and not wasilibs/go-pgquery (the same C parser
// compiled to WebAssembly, run by wazero), measured on this machine (2
// cores, Go 1.26, other builds running), 20,000 parses of six typical
// migration statements:
//
//	                     pg_query_go v6.2.5   go-pgquery (wazero)
//	first build          66 s                 75 s with cgo on*, 14 s with CGO_ENABLED=0
//	rebuild (one edit)   1.7 s                1.0-2.5 s
//	first parse (init)   2 ms                 1.5-1.7 s (compiles the wasm module)
//	per statement        21 us                70-86 us
//	per 12-statement     0.27 ms              0.86-0.90 ms
//	Go heap per stmt     3 KB                 100 KB
//	max RSS              16 MiB               257-261 MiB
//	binary               12 MiB               15-20 MiB
//
// (*go-pgquery returns pg_query_go's types, so with cgo enabled, as here,
// it compiles the same C parser as well.) The first build's minute is
// paid once per build cache; the wasm build's 1.5 s start-up alone would
// take most of the 2 s preflight budget, and it runs 3-4 times slower in
// 16 times the memory. The cost of the choice: building rehearse needs a
// C compiler (gcc) and cgo. CheckSQL over 500 generated migrations takes
// about 32 ms (0.06 ms a file; BenchmarkCheckSQL).
package preflight
