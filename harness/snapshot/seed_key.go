package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
)

// seedFixedSeed is the seed of the row hashes in a key's fingerprint and
// a manifest's: the same for every run, so that equal databases give
// equal keys.
const seedFixedSeed int64 = 0x5eed5eed

func seedFixedSeedOption() DataOption {
	return func(o *dataOptions) error { s := seedFixedSeed; o.seed = &s; return nil }
}

// Bounds of the bind sources a key reads: their files are configuration
// and secrets, not data. Past seedBindBytes of content, or past
// seedBindEntries entries, the key fails (the load runs, nothing is
// cached): a file counted by size and modification time would hit a
// cached state made of other contents (cp -p keeps both).
const (
	seedBindBytes   = 64 << 20
	seedBindEntries = 20_000
)

// seedKey computes the key of a load (see Seed) and locates the data
// directory that a store or a restore copies.
func seedKey(ctx context.Context, e *env.Environment, spec *dataset.Spec, scale int64, salt string) (*seedInputs, error) {
	h := sha256.New()
	line := func(k string, v ...any) { fmt.Fprintf(h, "%s %q\n", k, fmt.Sprint(v...)) }
	line("version", seedKeyVersion)
	for _, svc := range e.Services() {
		id, err := svc.Container().ImageID(ctx)
		if err != nil {
			return nil, err
		}
		line("image", svc.Name+"="+id)
	}
	digest, err := spec.Digest()
	if err != nil {
		return nil, err
	}
	line("dataset", digest)
	line("service", spec.Service)
	line("database", spec.Database)
	line("scale", scale)
	if err := seedHashPlans(h, e.Plan); err != nil {
		return nil, err
	}
	line("salt", salt)
	in := &seedInputs{inputs: hex.EncodeToString(h.Sum(nil))}

	sp := e.Plan.Service(spec.Service)
	dir, err := dataset.QueryValue(ctx, e, spec.Service, "SHOW data_directory")
	if err != nil {
		return nil, fmt.Errorf("%s: find the data directory: %w", spec.Service, err)
	}
	if in.pg, err = restoreLocate(e.Plan.File, sp, path.Clean(dir)); err != nil {
		return nil, err
	}
	pre, db, err := seedPreState(ctx, e, spec)
	if err != nil {
		return nil, err
	}
	in.db = db
	k := sha256.Sum256([]byte(in.inputs + "\n" + pre))
	in.key = hex.EncodeToString(k[:])
	return in, nil
}

// seedServicePlan is what a key takes of each service's plan: whatever
// changes what the service does to the database while it runs (its
// image counts by ID apart). Bind sources are relative to the project
// directory, so that two checkouts of one project share entries; their
// contents are hashed apart (seedHashBind).
type seedServicePlan struct {
	Name                      string
	Env                       map[string]string
	Entrypoint, Command       []string
	User, WorkingDir, Host    string
	Tmpfs                     map[string]string
	Mounts                    []env.Mount
	Sysctls                   map[string]string
	ShmSize                   int64
	DependsOn                 map[string]string
	Networks                  map[string][]string
	NoNetwork, Init, ReadOnly bool
	CapAdd, CapDrop, Security []string
	Disk                      *env.Disk
	ExtInit                   string
	Egress                    bool
}

// seedHashPlans hashes the plan of every service, sorted by name, then
// the contents of every bind mount's source.
func seedHashPlans(h hash.Hash, p *env.Plan) error {
	svcs := slices.Clone(p.Services)
	slices.SortFunc(svcs, func(a, b *env.ServicePlan) int { return strings.Compare(a.Name, b.Name) })
	type bind struct{ service, source string }
	var binds []bind
	for _, sp := range svcs {
		mounts := slices.Clone(sp.Mounts)
		for i, m := range mounts {
			if m.Type != "bind" {
				continue
			}
			binds = append(binds, bind{sp.Name, m.Source})
			if rel, err := filepath.Rel(p.Dir, m.Source); err == nil && filepath.IsLocal(rel) {
				mounts[i].Source = "project:" + filepath.ToSlash(rel)
			}
		}
		b, err := json.Marshal(seedServicePlan{
			Name: sp.Name, Env: sp.Env, Entrypoint: sp.Entrypoint, Command: sp.Command,
			User: sp.User, WorkingDir: sp.WorkingDir, Host: sp.Hostname, Tmpfs: sp.Tmpfs, Mounts: mounts,
			Sysctls: sp.Sysctls, ShmSize: sp.ShmSize, DependsOn: sp.DependsOn, Networks: sp.Networks,
			NoNetwork: sp.NoNetwork, Init: sp.Init, ReadOnly: sp.ReadOnly,
			CapAdd: sp.CapAdd, CapDrop: sp.CapDrop, Security: sp.SecurityOpt, Disk: sp.Disk,
			ExtInit: sp.Ext.Init, Egress: sp.Ext.Egress,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "plan %q\n", b)
	}
	budget := &seedBindBudget{bytes: seedBindBytes, entries: seedBindEntries}
	for _, b := range binds {
		fmt.Fprintf(h, "bind %q\n", b.service)
		if err := seedHashBind(h, b.source, budget); err != nil {
			return fmt.Errorf("%s: bind source %s: %w", b.service, b.source, err)
		}
	}
	return nil
}

// seedBindBudget is what is left of the bounds.
type seedBindBudget struct{ bytes, entries int64 }

// seedHashBind hashes a bind source as the service sees it: the source
// itself followed (the engine follows a link when it mounts), below it
// each entry's relative name, type and mode, a link's target, a file's
// contents (past the budget, an error: no key). A source that does not
// exist hashes as such.
func seedHashBind(h hash.Hash, src string, budget *seedBindBudget) error {
	st, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(h, "absent")
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return seedHashEntry(h, src, ".", st, budget)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return seedHashEntry(h, p, filepath.ToSlash(rel), info, budget)
	})
}

func seedHashEntry(h hash.Hash, p, rel string, info fs.FileInfo, budget *seedBindBudget) error {
	budget.entries--
	if budget.entries < 0 {
		return fmt.Errorf("more than %d entries: a key reads bind sources whole, and this one is too large to", seedBindEntries)
	}
	fmt.Fprintf(h, "%q %s", rel, info.Mode())
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, " -> %q", t)
	case info.Mode().IsRegular() && info.Size() > budget.bytes:
		return fmt.Errorf("%s: %d bytes past the %d MiB a key reads of bind sources: no key, nothing is cached (a file counted by size and time could hit another's state)",
			rel, info.Size(), seedBindBytes>>20)
	case info.Mode().IsRegular():
		budget.bytes -= info.Size()
		// Swapped for a link or a fifo since the walk: refused, not
		// followed or blocked on.
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%s: no longer a regular file", rel)
		}
		fh := sha256.New()
		if _, err := io.Copy(fh, io.LimitReader(f, info.Size()+1)); err != nil {
			return err
		}
		fmt.Fprintf(h, " %x", fh.Sum(nil))
	}
	fmt.Fprintln(h)
	return nil
}

// seedPreState is the hash of the cluster's state before the load: what
// a restore of the data directory would bring back. For every database
// that accepts connections (templates included): its data fingerprint
// (without keys, under a fixed seed) and its catalog (seedCatalogQueries);
// for the cluster: databases, roles, memberships, role passwords (a hash),
// per-database and per-role settings, the server's settings from its
// files (ALTER SYSTEM included) and pg_hba's rules (seedClusterQueries).
// It returns the loaded database's name too.
func seedPreState(ctx context.Context, e *env.Environment, spec *dataset.Spec) (string, string, error) {
	conn, err := dataConnect(ctx, e, spec.Service, spec.Database)
	if err != nil {
		return "", "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()::text").Scan(&db); err != nil {
		return "", "", fmt.Errorf("%s: read the cluster's state: %w", spec.Service, err)
	}
	h := sha256.New()
	if err := seedHashQueries(ctx, h, conn, seedClusterQueries); err != nil {
		return "", "", fmt.Errorf("%s: read the cluster's state: %w", spec.Service, err)
	}
	if err := seedHashPasswords(ctx, h, conn, seedSecrets(e.Plan)); err != nil {
		return "", "", fmt.Errorf("%s: read the roles' passwords: %w", spec.Service, err)
	}
	rows, err := conn.Query(ctx, `SELECT datname::text FROM pg_catalog.pg_database WHERE datallowconn ORDER BY 1`)
	if err != nil {
		return "", "", fmt.Errorf("%s: list databases: %w", spec.Service, err)
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", "", fmt.Errorf("%s: list databases: %w", spec.Service, err)
	}
	for _, d := range dbs {
		fmt.Fprintf(h, "database %q\n", d)
		p, err := Data(ctx, e, spec.Service, DataWithoutKeys(), seedFixedSeedOption(), DataDatabase(d))
		if err != nil {
			return "", "", fmt.Errorf("fingerprint database %s before the load: %w", d, err)
		}
		if err := json.NewEncoder(h).Encode(struct {
			Tables    []DataTable
			Sequences []DataSequence
		}{p.Tables, p.Sequences}); err != nil {
			return "", "", err
		}
		dc, err := dataConnect(ctx, e, spec.Service, d)
		if err != nil {
			return "", "", err
		}
		err = seedHashQueries(ctx, h, dc, seedCatalogQueries)
		dc.Close(context.WithoutCancel(ctx))
		if err != nil {
			return "", "", fmt.Errorf("%s: read the catalog of database %s: %w", spec.Service, d, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), db, nil
}

// seedHashQueries hashes each query's rows, every value quoted on its own
// (so that no two rows hash alike by where their values split); NULL is
// an unquoted marker, no quoted value's ("<nil>" is one).
func seedHashQueries(ctx context.Context, h hash.Hash, conn *pgx.Conn, queries []string) error {
	// One round trip for all of them (a pipeline): the key is made before
	// every load worth caching, on databases that are mostly fresh.
	batch := &pgx.Batch{}
	for _, q := range queries {
		batch.Queue(q)
	}
	res := conn.SendBatch(ctx, batch)
	for range queries {
		rows, err := res.Query()
		if err != nil {
			res.Close()
			return err
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				res.Close()
				return err
			}
			for _, v := range vals {
				seedHashValue(h, v)
			}
			fmt.Fprintln(h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			res.Close()
			return err
		}
		fmt.Fprintln(h, "--")
	}
	return res.Close()
}

// seedHashValue hashes one value of a row: quoted, or NULL unquoted.
func seedHashValue(w io.Writer, v any) {
	if v == nil {
		io.WriteString(w, "NULL\t")
		return
	}
	fmt.Fprintf(w, "%q\t", fmt.Sprint(v))
}

// seedCanJudge reports whether this process can judge whether an owner
// lives (runs.Owner.Alive): the same host, pid namespace and boot.
func seedCanJudge(o runs.Owner) bool {
	self := runs.Self()
	return o.Host == self.Host && o.PIDNS != "" && o.Boot != "" && o.PIDNS == self.PIDNS && o.Boot == self.Boot
}

// seedClusterQueries read what belongs to the cluster rather than one
// database, and what a copy of the data directory brings back: every
// database (those that refuse connections too: their name and settings
// count, their contents cannot be read), roles, memberships, per-database
// and per-role settings, the server's configuration files as they are now
// (pg_file_settings: a pending ALTER SYSTEM counts before a reload
// applies it), pg_hba's rules, tablespaces, comments on shared objects,
// prepared transactions, replication slots and subscriptions.
var seedClusterQueries = []string{
	// Every column but those that change on their own (vacuum's xids) or
	// name an OID (the owner, by name apart); to_jsonb keeps the query
	// the same across server versions (locale providers, ICU, ...).
	`SELECT d.datname::text, pg_get_userbyid(d.datdba)::text, pg_encoding_to_char(d.encoding),
		(to_jsonb(d) - 'oid' - 'datdba' - 'datfrozenxid' - 'datminmxid' - 'datlastsysoid' - 'dattablespace')::text,
		coalesce((SELECT spcname::text FROM pg_tablespace t WHERE t.oid = d.dattablespace), '')
		FROM pg_database d ORDER BY 1`,
	`SELECT rolname::text, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
		rolconnlimit, coalesce(rolvaliduntil::text, '') FROM pg_authid ORDER BY rolname`,
	`SELECT r.rolname::text, m.rolname::text, a.admin_option, coalesce(g.rolname::text, '') FROM pg_auth_members a
		JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member LEFT JOIN pg_roles g ON g.oid = a.grantor ORDER BY 1, 2`,
	`SELECT coalesce(d.datname::text, ''), coalesce(r.rolname::text, ''), s.setconfig::text FROM pg_db_role_setting s
		LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1, 2, 3`,
	`SELECT coalesce(sourcefile, ''), coalesce(sourceline, 0), seqno, coalesce(name, ''), coalesce(setting, ''), applied, coalesce(error, '')
		FROM pg_file_settings ORDER BY seqno`,
	`SELECT name, setting FROM pg_settings WHERE source IN ('command line', 'environment variable') ORDER BY name`,
	`SELECT line_number, type, coalesce(database::text, ''), coalesce(user_name::text, ''), coalesce(address, ''),
		coalesce(netmask, ''), coalesce(auth_method, ''), coalesce(options::text, ''), coalesce(error, '') FROM pg_hba_file_rules ORDER BY line_number`,
	`SELECT spcname::text, pg_get_userbyid(spcowner)::text, coalesce(spcacl::text, ''), coalesce(spcoptions::text, '') FROM pg_tablespace ORDER BY 1`,
	`SELECT d.classoid::regclass::text, CASE d.classoid WHEN 'pg_database'::regclass THEN (SELECT datname::text FROM pg_database WHERE oid = d.objoid)
			WHEN 'pg_authid'::regclass THEN pg_get_userbyid(d.objoid)::text
			WHEN 'pg_tablespace'::regclass THEN (SELECT spcname::text FROM pg_tablespace WHERE oid = d.objoid) ELSE d.objoid::text END,
		d.description FROM pg_shdescription d ORDER BY 1, 2, 3`,
	`SELECT gid, owner::text, database::text FROM pg_prepared_xacts ORDER BY 1`,
	`SELECT slot_name::text, coalesce(plugin::text, ''), slot_type, coalesce(database::text, ''),
		coalesce((to_jsonb(s) -> 'two_phase')::text, '') FROM pg_replication_slots s WHERE NOT temporary ORDER BY 1`,
	`SELECT s.subname::text, d.datname::text, pg_get_userbyid(s.subowner)::text,
		(to_jsonb(s) - 'oid' - 'subdbid' - 'subowner')::text
		FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid ORDER BY 1, 2`,
}

// seedNsFilter is the schemas of a database's own objects (not the
// system's, nor sessions' temporary ones).
const seedNsFilter = `(n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%')`

// seedCatalogQueries read, in one database, what its data fingerprint
// does not see: functions and procedures (their source, language,
// settings, owner, ACL), triggers, views' and materialized views'
// definitions (and whether a materialized view is populated; its rows
// are not read), every relation's owner, ACL, persistence, row security,
// options and partition key, inheritance and partition bounds, column
// ACLs and collations, schemas, extensions and their versions, policies,
// default privileges, rules, types (enums' labels, domains' constraints),
// collations, event triggers, publications and their tables, comments,
// large objects (owner, ACL and an md5 of their pages), foreign-data
// wrappers, servers, user mappings and foreign tables. A system object
// counts when its ACL was changed (a GRANT on it); comments on system
// objects count as one sum of hashes (order-free, no sort: cheap).
var seedCatalogQueries = []string{
	`SELECT n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid), p.prokind::text,
		coalesce(pg_get_function_result(p.oid), ''), md5(coalesce(p.prosrc, '')), coalesce(p.probin, ''), l.lanname::text,
		p.provolatile::text, p.prosecdef, p.proisstrict, coalesce(p.proconfig::text, ''), pg_get_userbyid(p.proowner)::text,
		coalesce(p.proacl::text, '')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
		WHERE ` + seedNsFilter + ` OR p.proacl IS NOT NULL ORDER BY 1, 2, 3`,
	`SELECT c.oid::regclass::text, t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal ORDER BY 1, 2`,
	`SELECT n.nspname::text, c.relname::text, c.relkind::text, pg_get_userbyid(c.relowner)::text, coalesce(c.relacl::text, ''),
		c.relpersistence::text, c.relrowsecurity, c.relforcerowsecurity, coalesce(c.reloptions::text, ''),
		CASE WHEN c.relkind IN ('v', 'm') AND ` + seedNsFilter + ` THEN coalesce(pg_get_viewdef(c.oid), '') ELSE '' END,
		CASE WHEN c.relkind = 'm' THEN c.relispopulated::text ELSE '' END,
		CASE WHEN c.relkind = 'p' THEN coalesce(pg_get_partkeydef(c.oid), '') ELSE '' END
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE ` + seedNsFilter + ` OR c.relacl IS NOT NULL ORDER BY 1, 2`,
	`SELECT a.attrelid::regclass::text, a.attname::text, a.attacl::text FROM pg_attribute a WHERE a.attacl IS NOT NULL ORDER BY 1, 2`,
	`SELECT n.nspname::text, pg_get_userbyid(n.nspowner)::text, coalesce(n.nspacl::text, '') FROM pg_namespace n
		WHERE n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%' ORDER BY 1`,
	`SELECT e.extname::text, e.extversion, e.extnamespace::regnamespace::text, coalesce(e.extconfig::text, '')
		FROM pg_extension e ORDER BY 1`,
	`SELECT p.polrelid::regclass::text, p.polname::text, p.polcmd::text, p.polpermissive, p.polroles::regrole[]::text,
		coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
		FROM pg_policy p ORDER BY 1, 2`,
	`SELECT pg_get_userbyid(d.defaclrole)::text, coalesce(d.defaclnamespace::regnamespace::text, ''), d.defaclobjtype::text,
		coalesce(d.defaclacl::text, '') FROM pg_default_acl d ORDER BY 1, 2, 3`,
	`SELECT schemaname::text, tablename::text, rulename::text, definition FROM pg_rules ORDER BY 1, 2, 3`,
	`SELECT n.nspname::text, t.typname::text, t.typtype::text, pg_get_userbyid(t.typowner)::text, coalesce(t.typacl::text, ''),
		coalesce(format_type(t.typbasetype, t.typtypmod), ''), coalesce(t.typdefault, ''),
		coalesce((SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), ''),
		coalesce((SELECT string_agg(c.conname || ' ' || pg_get_constraintdef(c.oid), ';' ORDER BY c.conname) FROM pg_constraint c WHERE c.contypid = t.oid), '')
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE (` + seedNsFilter + ` AND t.typtype IN ('e', 'd', 'r', 'm', 'b')) OR t.typacl IS NOT NULL ORDER BY 1, 2`,
	`SELECT evtname::text, evtevent::text, evtfoid::regproc::text, evtenabled::text, coalesce(evttags::text, '')
		FROM pg_event_trigger ORDER BY 1`,
	`SELECT p.pubname::text, pg_get_userbyid(p.pubowner)::text, (to_jsonb(p) - 'oid' - 'pubowner')::text FROM pg_publication p ORDER BY 1`,
	`SELECT p.pubname::text, r.prrelid::regclass::text, (to_jsonb(r) - 'oid' - 'prpubid' - 'prrelid')::text
		FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid ORDER BY 1, 2`,
	`SELECT pubname::text, schemaname::text, tablename::text, to_jsonb(t)::text FROM pg_publication_tables t ORDER BY 1, 2, 3`,
	`SELECT i.inhrelid::regclass::text, i.inhparent::regclass::text, i.inhseqno, coalesce(pg_get_expr(c.relpartbound, c.oid), '')
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid ORDER BY 1, 2`,
	`SELECT c.oid::regclass::text, a.attname::text, co.collnamespace::regnamespace::text, co.collname::text
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_collation co ON co.oid = a.attcollation
		WHERE ` + seedNsFilter + ` AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2`,
	`SELECT n.nspname::text, co.collname::text, pg_get_userbyid(co.collowner)::text, (to_jsonb(co) - 'oid' - 'collnamespace' - 'collowner')::text
		FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE ` + seedNsFilter + ` ORDER BY 1, 2`,
	`SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description FROM pg_description d
		WHERE d.objoid >= 16384 ORDER BY 1, 2`,
	`SELECT count(*), coalesce(sum(hashtextextended(d.classoid::text || ' ' || d.objoid::text || ' ' || d.objsubid::text || ' ' || d.description, 0)::numeric), 0)
		FROM pg_description d WHERE d.objoid < 16384`,
	`SELECT m.oid::int8, pg_get_userbyid(m.lomowner)::text, coalesce(m.lomacl::text, ''),
		coalesce((SELECT md5(string_agg(int4send(l.pageno) || decode(md5(l.data), 'hex'), ''::bytea ORDER BY l.pageno))
			FROM pg_largeobject l WHERE l.loid = m.oid), '')
		FROM pg_largeobject_metadata m ORDER BY 1`,
	`SELECT w.fdwname::text, pg_get_userbyid(w.fdwowner)::text, w.fdwhandler::regproc::text, w.fdwvalidator::regproc::text,
		coalesce(w.fdwacl::text, ''), coalesce(w.fdwoptions::text, '') FROM pg_foreign_data_wrapper w ORDER BY 1`,
	`SELECT s.srvname::text, w.fdwname::text, pg_get_userbyid(s.srvowner)::text, coalesce(s.srvtype, ''), coalesce(s.srvversion, ''),
		coalesce(s.srvacl::text, ''), coalesce(s.srvoptions::text, '')
		FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw ORDER BY 1`,
	`SELECT srvname::text, usename::text, coalesce(umoptions::text, '') FROM pg_user_mappings ORDER BY 1, 2`,
	`SELECT f.ftrelid::regclass::text, s.srvname::text, coalesce(f.ftoptions::text, '')
		FROM pg_foreign_table f JOIN pg_foreign_server s ON s.oid = f.ftserver ORDER BY 1`,
}
