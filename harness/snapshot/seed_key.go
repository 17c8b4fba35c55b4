package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
)

// seedFixedSeed is the seed of the row hashes in a key's fingerprint: the
// same for every run, so that equal databases give equal keys.
const seedFixedSeed int64 = 0x5eed5eed

// seedKey computes the key of a load (see Seed) and locates the data
// directory that a store or a restore copies.
func seedKey(ctx context.Context, e *env.Environment, spec *dataset.Spec, scale int64, salt string) (*seedInputs, error) {
	h := sha256.New()
	line := func(k string, v ...any) { fmt.Fprintf(h, "%s %q\n", k, fmt.Sprint(v...)) }
	line("version", seedKeyVersion)
	for _, svc := range e.Services() {
		id, err := svc.ImageID(ctx)
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
	sp := e.Plan.Service(spec.Service)
	plan, err := json.Marshal(struct {
		Env                 map[string]string
		Entrypoint, Command []string
		User, WorkingDir    string
		Tmpfs               map[string]string
		Mounts              []env.Mount
		Sysctls             map[string]string
		ShmSize             int64
	}{sp.Env, sp.Entrypoint, sp.Command, sp.User, sp.WorkingDir, sp.Tmpfs, sp.Mounts, sp.Sysctls, sp.ShmSize})
	if err != nil {
		return nil, err
	}
	line("plan", string(plan))
	line("salt", salt)
	in := &seedInputs{inputs: hex.EncodeToString(h.Sum(nil))}

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

// seedPreState is the hash of the state a load starts from: the target
// database's data fingerprint (without keys, under a fixed seed) and the
// cluster's databases, roles, memberships, per-database and per-role
// settings and the server's settings from its files (ALTER SYSTEM
// included). It returns the database's name too.
func seedPreState(ctx context.Context, e *env.Environment, spec *dataset.Spec) (string, string, error) {
	opts := []DataOption{DataWithoutKeys(), func(o *dataOptions) error { s := seedFixedSeed; o.seed = &s; return nil }}
	if spec.Database != "" {
		opts = append(opts, DataDatabase(spec.Database))
	}
	p, err := Data(ctx, e, spec.Service, opts...)
	if err != nil {
		return "", "", fmt.Errorf("fingerprint before the load: %w", err)
	}
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(struct {
		Database  string
		Tables    []DataTable
		Sequences []DataSequence
	}{p.Database, p.Tables, p.Sequences}); err != nil {
		return "", "", err
	}
	conn, err := dataConnect(ctx, e, spec.Service, p.Database)
	if err != nil {
		return "", "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range seedClusterQueries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return "", "", fmt.Errorf("%s: read the cluster's state: %w", spec.Service, err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return "", "", err
			}
			fmt.Fprintf(h, "%q\n", fmt.Sprint(vals...))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", "", fmt.Errorf("%s: read the cluster's state: %w", spec.Service, err)
		}
		fmt.Fprintln(h, "--")
	}
	return hex.EncodeToString(h.Sum(nil)), p.Database, nil
}

// seedClusterQueries read what a data fingerprint of one database does
// not see and a copy of the data directory brings back.
var seedClusterQueries = []string{
	`SELECT datname::text, pg_get_userbyid(datdba)::text, pg_encoding_to_char(encoding), datcollate::text, datctype::text,
		datallowconn, datistemplate, datconnlimit FROM pg_database ORDER BY datname`,
	`SELECT rolname::text, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
		rolconnlimit, coalesce(rolvaliduntil::text, '') FROM pg_roles ORDER BY rolname`,
	`SELECT r.rolname::text, m.rolname::text, a.admin_option FROM pg_auth_members a
		JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2`,
	`SELECT coalesce(d.datname::text, ''), coalesce(r.rolname::text, ''), s.setconfig::text FROM pg_db_role_setting s
		LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1, 2, 3`,
	`SELECT name, setting FROM pg_settings WHERE source IN ('configuration file', 'command line', 'environment variable') ORDER BY name`,
}
