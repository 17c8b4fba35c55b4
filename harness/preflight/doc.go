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
// flock, busybox, sudo, gosu, su-exec, setpriv, chpst, find -exec,
// nsenter, unshare, machinectl shell, watch -x), and scripts inside
// scripts are parsed in turn with their own lines: the string of bash -c,
// sh -c, su -c and flock -c, env -S's command line, eval's literal
// arguments, watch's and sg's command (run by sh -c), GNU parallel's
// command template, ssh's remote command, a heredoc or here-string
// fed to a shell, su or ssh, and the expansion of an alias the script
// defines (alias s=sudo; s id). A heredoc that is only data (cat > f
// <<EOF) is not a script, but its $(...) run and are checked; a crontab
// written from a heredoc or by echo has its jobs checked. Variables the
// script sets once, at its top level, to a literal are followed. The
// shells read are ShellInterpreters; a script run by zsh, fish or csh is
// cannot-tell, and so is a program given inline to another language
// (python3 -c, perl -e other than a plain s/// substitution, ruby -e,
// node -e, php -r).
//
// NUL bytes: a script or migration is read with its NUL bytes removed,
// wherever they are (bash skips them past its first 80 bytes, dash and
// psql everywhere, while PostgreSQL's parser would stop at the first),
// with a cannot-tell naming the first one's line. A file is a program,
// not read, only by a binary magic number (ELF, Mach-O, PE, archives). A
// finding's line is counted from its byte offset where mvdan's positions
// give none (past line 262,143). CheckScriptContext and
// WithContext(ctx) stop a started check when ctx is done.
//
// Each nested script is read once (the same text on the same line gives
// the same findings, however it is reached: a bash -c string inside
// $(...) is reached by the walk around it and by the parse of every
// string around that), at most 7 scripts deep inside the file, and within
// a budget of 8 times the file's size plus 1 MiB parsed; past either, a
// cannot-tell says what was not read.
//
// The rules: sudo (sudo, doas, su, runuser, pkexec, gosu, su-exec,
// setuidgid, setpriv --reuid, chpst -u: run the step as its manifest user
// instead); unknown-unit (systemctl VERB UNIT..., service UNIT VERB naming
// a unit the host's inventory lacks; billing-api means
// billing-api.service, foo@bar.service counts when foo@.service is there;
// globs, --user and other hosts are not judged); scheduled-task (crontab
// FILE/-e/-, writes into /etc/cron* and /var/spool/cron by redirection,
// tee, sponge, dd of=, sed -i or perl -i, copies by cp, mv, ln, install
// or rsync, timers enabled, started or copied into a unit directory,
// systemd-run --on-*, at); external-endpoint (curl, wget, nc, ssh, scp,
// rsync, psql -h and other database clients, bash's /dev/tcp/HOST/PORT
// and /dev/udp in a redirection, curl --resolve and --connect-to, aimed at
// a host that is not the environment's, loopback, or allowed;
// ".example.com" allows the domain and its subdomains); cannot-tell where
// the parser cannot see (a command named by a variable or $(...), eval or
// bash -c of a run-time string, an alias built at run time, a script
// sourced from outside the package, a shell fed from a pipe, URLs read
// from a file by curl -K or wget -i, a unit or host only known at run
// time); parse-error for a script whose top level does not parse, alone
// (a string inside it that does not parse comes with the rest's
// findings). CheckScheduledFile reads a shipped crontab (each job a
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
// indexes and column types the file itself made. PostgreSQL's scanner
// (flat, no recursion) cuts the file into statements first and bounds how
// deep each one nests; a statement deeper than sqlMaxDepth is not handed
// to the parser, whose C code recurses over the tree and would overflow
// the stack and kill the process (see below): it is a cannot-tell
// ("statement N at line L nests deeper than preflight parses"), and the
// others are checked. The file is parsed whole, in one call; after a
// syntax error (or next to a statement too deep) each statement is parsed
// alone, so the work stays linear in the file's size. Each statement's locks
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
// no-migration-lock; cannot-tell (info) for DO blocks that change tables,
// for CALL, whose insides are not followed, and for a statement too deep
// to parse; parse-error (error) at the parser's cursor, one a file, the
// statements around it still checked. Measured
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
// about 42 ms (0.08 ms a file; BenchmarkCheckSQL), 30 ms of it without the
// depth bound's scan (below).
//
// Deep statements, weighed again. The parser recurses over the tree it
// builds (about 350 bytes of C stack a level), and a chain of binary
// operators is a tree as deep as the chain: SELECT 1+1+... of 23,800
// terms, 60 KB of valid SQL, overflows the 8 MiB main-thread stack. Under
// cgo that is a SIGSEGV in C: no Go code can recover it, the process dies
// with no output and no cleanup; on a 2 MiB thread stack (glibc's default
// for other threads when ulimit -s is unlimited) it comes at about 5,900
// terms. From 4,970 terms the Go protobuf decoder refuses the tree instead
// ("exceeded maximum recursion depth"), a false parse error. The wasm
// build runs the same C code on a fixed wasm stack: it overflows sooner,
// between 3,400 and 3,500 terms whatever ulimit says, and the trap comes
// back to Go as a panic (the Go code could recover it, though the wasm
// instance's C state after a trap is not to be trusted). Neither build
// parses such a statement, so neither can do without a bound; with the
// bound (the scanner's depth, 1,500 operators or 500 levels of nesting:
// 3 times below the protobuf limit and bison's stack, 2 times below a
// crash on a 1 MiB stack, and under the wasm build's overflow too) both
// are safe, and the wasm build's one advantage here, a recoverable
// failure, no longer weighs against its start-up time, speed and memory.
// So cgo stays. The bound costs one scan of the file: a third more time on
// typical migrations, a fifth of the parse's time on a 100,000-row INSERT.
package preflight
