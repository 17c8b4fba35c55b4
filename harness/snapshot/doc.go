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
// included); sequences with their definition and last value. No row is
// copied out.
//
// A row's hash is hashtextextended of the row's text, ROW(t.*)::text, in
// sessions whose settings fix that text (time zone, date, interval, float,
// bytea and money output, search_path); the checksum is the sum of the
// hashes (a numeric, so no overflow), with the count. A sum, unlike an
// XOR, does not cancel duplicate rows.
//
// To name rows in a later diff, the print keeps each keyed table's (primary
// key, row hash) pairs inside the database, in unlogged tables of a private
// schema (rehearse_fp_<run id>_<random>; the run id means a database cannot
// have made one up in advance to hide its own tables). DiffData recomputes
// each table's count and checksum, and only for a table whose checksum
// moved joins its rows with the kept pairs (FULL OUTER JOIN on the key) to
// count changed, added and deleted rows and name the first few keys of
// each. DiffData writes nothing. Tables without a primary key get counts
// and the checksum, and the diff says their rows are not named.
// Forget (or ForgetData, after a process that ended without it) drops the
// private schema.
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
// The measure, BenchmarkDataFingerprint on the bundled world with
// 1,000,000 invoices (4,099,118 rows in four tables), on a 2-core machine
// that was running other tests at the same time (so the absolute figures
// vary by about two): the fingerprint with keys took 8.4s and 18.8s in two
// runs, without keys (DataWithoutKeys, read-only) 4.5s and 9.6s; DiffData of
// the untouched world 5.6s and 11.4s, and 7.9s and 15.5s after one invoice
// changed (a second scan of invoices joined with its pairs). Bringing the
// world up and seeding it took 131s and 187s: a ratio of 0.064 and 0.10,
// against a target of 0.2. Keeping the keys doubles a print's time (writing
// 4 million pairs); it is the default because a diff that names the
// changed rows is what the rehearsal report needs, and the ratio holds.
// Measured per table on invoices (1M rows, warm cache): the text hash sum
// 1.2-4.5s, hash_record_extended 0.6-1.0s (faster, but not faithful: it
// fails for types without a hash opclass, such as json and point, and
// hashes equal values alike, 1.0 and 1.00, or two spellings under a
// nondeterministic collation), md5 of the text 3.1-9.6s; keeping the pairs
// in an unlogged table 2.3-5.1s, in a temporary one 1.5-2.9s (but a
// temporary table dies with the session, before the diff). Parallel query
// gave no consistent gain on two cores; the database's setting is kept.
package snapshot
