// Package snapshot fingerprints a running environment, so that a rehearsal
// can say what an upgrade (or its rollback) changed: the configuration of
// services (Config, ConfigAll) and the data of PostgreSQL services (Data,
// DiffData). A fingerprint is small and comparable; two of them diff into
// one finding per change, named for people.
//
// # Data fingerprints
//
// Data fingerprints one database of a PostgreSQL service: per user table
// (every schema but pg_catalog, information_schema and the run's private
// ones; ordinary and partitioned tables) the row count and an
// order-independent checksum of every row, computed inside the database,
// and the schema from the catalog: columns with types, defaults,
// nullability, identity and generation; indexes (pg_get_indexdef, an
// invalid one marked); constraints (pg_get_constraintdef, NOT VALID
// included); sequences with their definition and state (last_value and
// is_called read from each sequence itself, not pg_sequences, which shows
// NULL whenever is_called is false: a diff names the next value nextval
// gives, so setval(s, 5000, false) reads "next value 1 -> 5000"). No row
// is copied out.
//
// A row's hash is hashtextextended of the row's text, ROW(t.*)::text, with
// a seed drawn at random for each print (DiffData uses its earlier print's;
// DataSeedOf takes a print under another's seed, so that Diff compares
// their checksums), in sessions whose settings fix that text (time zone,
// date, interval, float, bytea and money output, search_path) and how a
// string literal parses (standard_conforming_strings on, client_encoding
// UTF8: startup parameters, which the database's and roles' settings do not
// override); the checksum is the sum of the hashes (a numeric, so no
// overflow), with the count. A sum, unlike an XOR, does not cancel
// duplicate rows.
//
// The checksum finds accidents, not an adversary. hashtextextended is a
// public, non-cryptographic 64-bit hash; the random seed means an upgrade
// cannot prepare, in advance, a change that leaves a checksum as it was,
// but the seed is no secret key: it is in the text of the print's
// statements (pg_stat_activity, a statement log), the kept hashes sit in
// the database next to the rows they hash, and a 64-bit sum of hashes is
// open to generic attacks. More to the point, the database and whoever upgrades it usually
// hold the superuser the harness connects as: they can rewrite the kept
// hashes, or the catalog itself. What is fingerprinted inside a database
// is what that database chooses to show.
//
// No text of the database's goes into a statement as a literal: names are
// quoted as identifiers (pgx's Sanitize), values are bound parameters, the
// one comment is quoted by the server (format's %L), the snapshot id is
// checked to be the server's, and every statement built with a name runs
// over the extended protocol, which runs one statement whatever its text.
//
// To name rows in a later diff, the print keeps each keyed table's (primary
// key, row hash) pairs inside the database, in unlogged tables (t1, t2...)
// of a private schema (rehearse_fp_<run id>_<8 hex digits>), each with a
// comment naming the table it hashes. A print leaves out exactly the key
// tables this process created (and, in DiffData, the earlier print's), by
// OID: a table the database makes in a private schema, or in one named
// like it, is printed like any other, and it cannot take the OID the
// server gave a key table. DiffData recomputes
// each table's count and checksum, and only for a table whose checksum
// moved joins its rows with the kept pairs (FULL OUTER JOIN on the key) to
// count changed, added and deleted rows and name the first few keys of
// each. DiffData writes nothing. Tables without a primary key get counts
// and the checksum, and the diff says their rows are not named.
// Forget drops the print's key tables (by name, when they still have
// their OIDs) and then its schema, all RESTRICT: a user object that depends
// on one (a view, a foreign key) is not dropped with it, and Forget fails
// saying what depends. ForgetData, after a process that ended without
// Forget, does the same for the tables that look like the harness's: named
// t<n>, unlogged, with its comment, owned by the connected role, in schemas
// named like a private one and owned by that role (these marks a database
// can copy; RESTRICT is what keeps its objects); a schema that still holds
// anything after that stays, and ForgetData says so.
//
// One snapshot covers every table: a read-only REPEATABLE READ transaction
// exports it and stays open, holding no lock on a user table, while a second
// session reads the tables one by one, each in a transaction of its own on
// that snapshot. A table is thus held ACCESS SHARE only while it is read:
// a migration that starts meanwhile waits for one table's scan at most,
// and no reader of the dependent services queues behind it for longer.
// The transaction that keeps a table's pairs is read-write for its own
// CREATE TABLE AS; everything else is read-only. (Like pg_dump, the
// snapshot does not see through a table rewrite, such as ALTER TABLE ...
// TYPE, that commits during the fingerprint.)
//
// The measure, BenchmarkSnapshot (snapshot_bench_test.go: one run
// seeds once and measures the fingerprint and the snapshots below) on
// the bundled world with 1,000,000 invoices (4,099,118 rows in four
// tables), 2-core machine, two runs: one on a quiet machine, one while
// other tests ran (load average 10, so its figures are up to three times
// longer). The fingerprint with keys took 4.6s and 11.5s, without keys
// (DataWithoutKeys, read-only) 3.2s and 4.7s; DiffData of the untouched
// world 4.0s and 4.6s, and 5.3s and 8.1s after one invoice changed (a
// second scan of invoices joined with its pairs). Bringing the world up
// and seeding it took 68.6s and 203s: a ratio of 0.067 and 0.057, against
// a target of 0.2. Keeping the keys costs 1.4 to 2.4 times a print's time
// (writing 4 million pairs); it is the default because a diff that names
// the changed rows is what the rehearsal report needs, and the ratio
// holds.
// Measured per table on invoices (1M rows, warm cache): the text hash sum
// 1.2-4.5s, hash_record_extended 0.6-1.0s (faster, but not faithful: it
// fails for types without a hash opclass, such as json and point, and
// hashes equal values alike, 1.0 and 1.00, or two spellings under a
// nondeterministic collation), md5 of the text 3.1-9.6s; keeping the pairs
// in an unlogged table 2.3-5.1s, in a temporary one 1.5-2.9s (but a
// temporary table dies with the session, before the diff). Parallel query
// gave no consistent gain on two cores; the database's setting is kept.
//
// # Snapshots
//
// Take and Restore bring a whole environment back to a known point, for a
// rollback or the next scenario. Each kind of state goes back its own way:
//
//   - A PostgreSQL service (IsPostgres: one that declares roles: or
//     queries:, or publishes 5432): its data directory (SHOW
//     data_directory) must lie on a writable volume of the service with no
//     other mount inside it, no pg_wal link and no tablespace (Take refuses
//     the rest, naming the compose file and service). With the service
//     stopped, a helper container of image.DebianBase (never the service's
//     untrusted image) mounts exactly that volume, read-only, and a spare
//     volume of the run (env.CreateSpareVolume, Container.RunWithVolumes:
//     no network, CHOWN, DAC_OVERRIDE, FOWNER and FSETID only; bind mounts
//     are never mounted), copies it and checks the copy against the source
//     (entry count, bytes, the sha256 of global/pg_control), recorded as a
//     manifest. Restore stops the service, copies the snapshot into a
//     staging directory on the same volume, checks it against the
//     manifest, and only then swaps it in by renames; a copy that fails
//     the check, or a failure before the swap (no space on the volume, a
//     leftover it cannot remove), leaves the live data untouched, the
//     error saying which of the two (the copy damaged, or the
//     environment), and the service is started again. A helper that may
//     have run and whose end is unknown (its wait failed, the context was
//     cancelled) or a swap that failed half-way leaves the service
//     stopped. Everything in the cluster comes back: every database, the
//     roles and their memberships, the server's own settings (ALTER
//     SYSTEM); a database created after Take goes. The dependents see an
//     outage while the service is down and reconnect.
//   - Declared files (config: files:) and, with crontab: true, /etc/crontab,
//     /etc/cron.d and /var/spool/cron: an archive of each path as the
//     engine reads it, kept in memory (bounded like the fingerprint: 20,000
//     entries, 256 MiB). Restore removes the path in the service (rm -rf:
//     what an upgrade added goes) and extracts the archive through the
//     engine (Service.ExtractTree), which keeps numeric owners, groups and
//     modes; a path absent at Take is removed. Take refuses a path that is
//     or holds a mount point: the plan's mounts, and the VOLUMEs of the
//     service's image (env.Container.ImageVolumes), where the engine mounts
//     an anonymous volume the plan does not list; the error names the
//     compose file, service and volume.
//   - Units (config: units: true): after the files, systemctl daemon-reload,
//     then each unit is enabled, disabled, masked, started or stopped back
//     to the state the snapshot recorded; a unit that the snapshot had
//     active and that is active still is restarted when a path it names
//     (unit file, drop-ins, environment files, commands and their
//     arguments) lies under a restored file that had changed, so that it
//     runs the restored program with the restored configuration. A unit the
//     snapshot did not have is stopped.
//   - A service whose declared state lives in memory (config: http: lists,
//     no volume): restarted when its lists differ. It comes back in its
//     initial state, which is the snapshot's only when the snapshot was
//     taken before anything registered there: the restore then fails
//     naming what is lost (the payments stub's webhooks, say).
//   - Nothing else is restored: an undeclared service's state in memory or
//     in its container's file system stays as it is.
//
// Take records the image ID each restored service runs (PostgreSQL, files,
// state in memory), and Restore refuses, before it stops anything, when
// one runs another image now (an upgrade that replaced it, a recreated
// container), naming each with both IDs. For a PostgreSQL service a data
// directory of one server version may not start under another; for a
// service whose files are restored the danger is quieter but real, and
// refused alike: its declared files would come back under another image's
// program, the configuration check would pass, and the service would run
// a mix of two versions that no fingerprint covers. Take another snapshot
// after an image changes.
//
// Restore checks itself: once every service is ready again after the
// copies (the dependents of a restarted database reconnected, so that
// what they write on reconnecting is seen), Take fingerprints the data
// (without keys) of every database of each PostgreSQL service that
// accepts connections (templates left out) and the configuration of
// every declared service; once every service is ready again after the
// restore, alike, Restore diffs each of those databases and, at the same
// time, the configuration. It returns a *RestoreMismatch naming each difference by
// service and database ("db/billing"), a database missing since Take, and
// one created since that the restore did not remove. Services restore in
// parallel. The copies live in volumes labelled with the run, so Down, the
// watchdog and gc remove them; Drop removes them earlier. A data print
// with keys taken after Take loses its private hashes to a restore (the
// copy predates them): its later diffs give counts only.
//
// The copy leaves out the WAL a clean shutdown no longer needs: only the
// segment of the shutdown checkpoint (and the next, should the record
// cross into it) is kept, read from global/pg_control (state, redo point,
// timeline; PostgreSQL 11 and later); after the bulk load below, pg_wal
// held 944 MB in 59 segments, recycled ahead of use, against 546 MB of
// databases. On any doubt, after anything but a clean shutdown, or with
// replication slots, the whole directory is copied.
//
// The measure, BenchmarkSnapshot on the bundled world with 1,000,000
// invoices (546 MB of databases), 2-core machine, the same two runs:
// bringing the world up and seeding it took 68.6s on the quiet machine
// and 203s under load (the baseline). Two mechanisms for PostgreSQL, on
// that world (quiet, then loaded):
//
//   - A template database: CREATE DATABASE snap TEMPLATE billing, with
//     billing refusing connections and its sessions ended meanwhile (the
//     dependents' outage), took 2.7s and 3.2s with PostgreSQL 15's default
//     STRATEGY WAL_LOG and 1.1s and 2.6s with FILE_COPY; restoring it
//     (DROP DATABASE billing WITH (FORCE); CREATE DATABASE billing
//     TEMPLATE snap STRATEGY FILE_COPY) 1.9s and 4.8s.
//   - The data directory copied with the service stopped (what Take and
//     Restore do): Take took 7.9s and 11.6s (stop 0.3-0.5s, copy 2.2-2.3s,
//     start and healthy 1.6-1.8s, data fingerprint 1.7-4.9s, configuration
//     fingerprint 2.0-2.1s; billing's archive 0.3-0.4s alongside). In the
//     loaded run, with the checks as described above, Restore took 15.4s
//     and, a second time, 11.0s: stop 0.2-0.4s, copy back 6.5s and 2.0s,
//     start 1.7-1.8s; alongside, billing's files and units 8.8s and 6.8s,
//     billing-api being restarted on its changed configuration; then,
//     every service ready, the data check (6.6s and 4.2s) beside the
//     configuration check (5.9s and 1.7s). Restore over up+seed: 0.076
//     (0.054 the second time). In the quiet run, when the data check still
//     ran alongside the files, Restore took 12.0s and 10.6s: 0.176 and
//     0.155, against a target of 0.2.
//
// The template is faster for the data alone (1.9-4.8s against 3.9-8.7s
// of stop, copy back and start, and a shorter outage for the
// dependents), but it copies one database, where an upgrade changes a
// cluster: roles are cluster-wide (dropping one an upgrade made means
// reassigning or dropping what it owns in every database), and other
// databases, per-role and per-database settings (shared catalogs) and
// ALTER SYSTEM would not come back; and the snapshot would be a database
// inside the cluster under rehearsal, visible to the upgrade. A restore's
// time goes mostly to checking itself (2-7s) and to the units of the
// billing host (7-9s), not to the copy: the template would save about 2
// to 5s of 11-15s. Both meet the target; the data-directory copy brings
// back everything PostgreSQL keeps, so it is the mechanism.
//
// # Seeded states
//
// Seed makes a seeded state once (rehearse run, "Given the dataset ... is
// loaded at scale N"); a later load of the same dataset at the same scale
// from the same starting point restores it. A hit swaps the whole data
// directory, so the key covers whatever a restore brings back or a load
// depends on:
//
//   - the image ID of every service, and the plan of every service
//     sorted by name (environment, entrypoint, command, user, working
//     directory, hostname, mounts, tmpfs, sysctls, shm size, dependencies,
//     networks, init, read-only root, capabilities, security options,
//     disk), bind sources relative to the project directory, and the
//     contents of every bind source (names, modes, link targets, files by
//     sha256); past 64 MiB of files in all, or 20,000 entries, the key
//     fails and the load runs uncached (a file counted by size and
//     modification time, which cp -p keeps, could hit a state made of
//     other contents): the dependents run during the load and write into
//     the stored state;
//   - the dataset (dataset.Spec.Digest: the definition as parsed,
//     dataset.GeneratorVersion, schema, dump files), service, database
//     and scale;
//   - the cluster before the load: every database that accepts
//     connections (templates included) by its data fingerprint without
//     keys under a fixed seed (sequences' state included) and its catalog
//     (functions and procedures with their source, triggers, views' and
//     materialized views' definitions and whether populated, owners, ACLs,
//     persistence and options of relations, partition keys, inheritance
//     and partition bounds, column ACLs and collations, schemas and types,
//     row security and policies, extensions and their versions, default
//     privileges, rules, enums and domains, collations, event triggers,
//     publications and their tables, comments, large objects (owner, ACL
//     and an md5 of their pages), foreign-data wrappers, servers, user
//     mappings and foreign tables), and the cluster's databases (every
//     one: a database with datallowconn false counts by its name and
//     settings, its contents cannot be fingerprinted since it refuses
//     connections), roles, memberships, per-role and per-database
//     settings, the configuration files as they are now (pg_file_settings:
//     an ALTER SYSTEM not yet reloaded counts), settings from the command
//     line, tablespaces, comments on shared objects, pg_hba's rules,
//     prepared transactions, replication slots, subscriptions and role
//     passwords. A SCRAM verifier has a random salt, so two clusters
//     initialised alike hold different verifiers of one password: one that
//     verifies a secret of the compose file (an environment value, the
//     password of a URL or key=value string in one, or a small password
//     file a service reads: a *_FILE variable's path or a compose secret,
//     its trailing newlines trimmed) counts as that secret, any other by
//     its bytes (a miss, never a wrong hit). Not covered: materialized
//     views' rows, security labels, operators, casts, text search
//     configurations, pg_ident.
//
// The cluster part was measured against `pg_dumpall --schema-only` run in
// the service on a fresh bundled world (machine busy with other tests):
// the key, queries plus the data fingerprint of the three databases that
// accept connections, took 0.35-0.95s (about 0.55s typically);
// pg_dumpall alone took 0.5-0.75s through docker exec and would still
// need the fingerprints beside it, an exec in the project's image and
// its local authentication. The queries are the key. With the coverage
// widened (large objects, comments, partitions, publications' tables,
// collations, foreign servers, pg_file_settings, slots, subscriptions,
// prepared transactions), BenchmarkSeedKey on a fresh bundled world
// (10 keys, 2-core machine) gives 0.26s a key, against 0.345s for the
// narrower set before: each database's queries go in one pipelined round
// trip, system views' definitions are not read (only their ACLs), and
// comments on system objects count as one order-free sum of hashes.
//
// An entry is a cache volume (not of any run) labelled with the key, the
// group (compose file, dataset directory, service, scale), the inputs
// (the key without the cluster's state) and its maker's owner labels; the
// copy of the data directory and, written last, a manifest: the key, the
// copy's entries, bytes and pg_control digest, the load's time, the rows
// per generated table and the loaded database's per-table row counts and
// checksums (its data fingerprint without keys under the fixed seed),
// names quoted. A lookup reads each entry's manifest with a helper that
// mounts only that volume, read-only (0.35-0.75s an entry; nothing is
// stopped), passes over incomplete entries (a store under way, or one
// whose maker died) and tries the newest complete ones, up to three. A
// try stops the service, stages the copy from the entry mounted
// read-only, checks it against the manifest, swaps it in, starts the
// service, waits for every service and compares the loaded database's
// fingerprint with the recorded one. The helper scripts exit 11 (no
// manifest: the entry is kept, or, when the engine made its name again
// empty for the mount because it had been removed, that volume goes), 12
// (a manifest of another key: removed), restoreBackDamaged (the copy is
// damaged or does not match: removed) and restoreBackUntouched (no space,
// leftovers: kept); each leaves the data directory untouched and the
// service is started again, as after a helper that never ran
// (env.ErrHelperNotRun: its image is ensured first). A failure after the
// swap fails the step (Cache "hit-failed"); so does a refused entry
// after which the service does not come back on its untouched data (no
// Cache: the error says so, and no load runs against a stopped
// database). After a store, the group
// keeps its newest three complete entries: entries of other inputs go,
// so do other complete entries of the same key (concurrent stores), and
// incomplete ones whose maker is gone or, when this process cannot judge
// its maker (another host or container), older than an hour. Fresh
// removes the key's entries before the load, whether or not it stores.
// `rehearse gc` removes every cached state not in use (--keep-cache keeps
// them) but the seeded states whose maker lives (or, unjudged, that are
// younger than an hour): they may be being stored (SeedEntryMayBeStoring;
// --all removes them too); runs, Down and the watchdog leave them.
//
// The measure, BenchmarkSeedCache (two bundled worlds, one stores, the
// other restores; 2-core machine with other tests running): at 5,000,
// 20,000 and 400,000 invoices the load took 0.5s, 1.8s and 21.7s; a hit
// 3.5s, 4.7s and 6.9s (key 0.4-0.5s, reading the entry 0.4-0.5s, stop
// 0.2s, copy back 0.8s, 1.6s and 2.7s, start 1.7s, fingerprint check
// 0.2s at 20,000 and 1.4s at 400,000); a store added 3.3s, 4.1s and 6.0s
// to the load, its key included (the fingerprint 1.3s of it at 400,000). Below 4s of load
// (SeedMinLoad) nothing is stored. The fingerprint check is a fifth of a
// hit at 400,000, and it covers the loaded database only: the other
// databases are in the key, and a load does not change them (a dependent
// writing into one during the load goes unchecked).
package snapshot
