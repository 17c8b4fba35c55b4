package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
)

// configMaxOutput bounds what one command, query or list may answer.
const configMaxOutput = 4 << 20

// errConfigTooMuch is an answer past configMaxOutput.
var errConfigTooMuch = fmt.Errorf("answered more than %d MiB", configMaxOutput>>20)

// configLimited is a buffer that refuses to grow past configMaxOutput: the
// command writing into it fails instead.
type configLimited struct{ bytes.Buffer }

func (w *configLimited) Write(p []byte) (int, error) {
	if w.Len()+len(p) > configMaxOutput {
		return 0, errConfigTooMuch
	}
	return w.Buffer.Write(p)
}

// configExec runs a command in the service as root, with bounded output,
// and fails unless it exits 0.
func configExec(ctx context.Context, svc *env.Service, cmd ...string) (string, error) {
	var stdout, stderr configLimited
	code, err := svc.ExecStream(ctx, cmd, &stdout, &stderr, env.AsUser("0"),
		env.WithExecEnv("LC_ALL=C", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LESS="))
	if err != nil {
		return "", err
	}
	if code != 0 {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return "", fmt.Errorf("%s exited %d: %q", strings.Join(cmd, " "), code, msg)
	}
	return stdout.String(), nil
}

// configUnitTypes are the units a fingerprint covers: those a host's
// configuration makes, not the devices, mounts, scopes and slices systemd
// makes for what happens to run.
const configUnitTypes = "service,socket,timer,path,target"

// configUnitIdle is the state of a unit that is not active. systemd lists
// such a unit only while something references it (it unloads the others
// now and then), so an idle unit without a unit file of its own (an
// instance of a template, a unit something only names) is left out: it
// would come and go with systemd's garbage collection.
const configUnitIdle = "inactive"

// configUnits records every unit (of configUnitTypes) that has a unit file
// or is not idle, with "state" (its active state: active, inactive, failed,
// activating, ...) and "enabled" (its unit file's state). The sub state
// (running, exited, waiting) is left out: a timer's goes from waiting to
// running and back on its own.
func configUnits(ctx context.Context, svc *env.Service) ([]ConfigItem, error) {
	loaded, err := configExec(ctx, svc, "systemctl", "list-units", "--all", "--no-legend", "--plain", "--full", "--no-pager", "--type="+configUnitTypes)
	if err != nil {
		return nil, err
	}
	files, err := configExec(ctx, svc, "systemctl", "list-unit-files", "--no-legend", "--plain", "--full", "--no-pager", "--type="+configUnitTypes)
	if err != nil {
		return nil, err
	}
	return configParseUnits(loaded, files), nil
}

// configParseUnits makes unit items of what systemctl list-units and
// list-unit-files print.
func configParseUnits(loaded, files string) []ConfigItem {
	state, enabled := map[string]string{}, map[string]string{}
	for line := range strings.SplitSeq(files, "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			enabled[f[0]] = f[1]
		}
	}
	for line := range strings.SplitSeq(loaded, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "●" || f[0] == "*") { // a failed or missing unit's mark
			f = f[1:]
		}
		if len(f) < 4 {
			continue
		}
		if _, ok := enabled[f[0]]; !ok && f[2] == configUnitIdle {
			continue
		}
		state[f[0]] = f[2]
	}
	var items []ConfigItem
	for _, u := range slices.Sorted(maps.Keys(configUnion(state, enabled))) {
		st, ok := state[u]
		if !ok {
			st = configUnitIdle
		}
		it := ConfigItem{Name: "unit " + u}
		if en, ok := enabled[u]; ok {
			it.Attrs = append(it.Attrs, ConfigAttr{"enabled", en})
		}
		it.Attrs = append(it.Attrs, ConfigAttr{"state", st})
		items = append(items, it)
	}
	return items
}

func configUnion(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// Bounds of the SQL part: rows of one query, bytes of one row (a protocol
// message), the statement's time.
const (
	configMaxRows     = 10000
	configMaxRowBytes = 1 << 20
	configSQLTimeout  = 30 * time.Second
)

// configRolesSQL lists the roles but PostgreSQL's own (pg_*), with what
// psql's \du shows: attributes, memberships, and per-role settings.
const configRolesSQL = `SELECT r.rolname,
  concat_ws(', ',
    CASE WHEN r.rolsuper THEN 'superuser' END,
    CASE WHEN NOT r.rolinherit THEN 'no inherit' END,
    CASE WHEN r.rolcreaterole THEN 'create role' END,
    CASE WHEN r.rolcreatedb THEN 'create db' END,
    CASE WHEN r.rolcanlogin THEN 'login' END,
    CASE WHEN r.rolreplication THEN 'replication' END,
    CASE WHEN r.rolbypassrls THEN 'bypass rls' END,
    CASE WHEN r.rolconnlimit <> -1 THEN 'connection limit ' || r.rolconnlimit END,
    CASE WHEN r.rolvaliduntil IS NOT NULL THEN 'valid until ' || r.rolvaliduntil END) AS attributes,
  coalesce((SELECT string_agg(b.rolname, ', ' ORDER BY b.rolname)
            FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
            WHERE m.member = r.oid), '') AS "member of",
  coalesce(array_to_string(r.rolconfig, ', '), '') AS settings
FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1`

// configSQL records the roles (items "role NAME") and the declared queries'
// rows (items "QUERY KEY"), over one connection to the PostgreSQL service
// (its 127.0.0.1 endpoint, with the credentials harness/dataset uses). The
// session is read-only and each query runs in a read-only transaction of
// its own, rolled back, with a statement timeout.
func configSQL(ctx context.Context, e *env.Environment, service string, roles bool, queries map[string]string) ([]ConfigItem, error) {
	dsn, err := dataset.DSN(e, service, "")
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 15 * time.Second
	cfg.MaxProtocolMessageBodyLen = configMaxRowBytes
	cfg.RuntimeParams["application_name"] = "rehearse-fingerprint"
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.RuntimeParams["statement_timeout"] = strconv.Itoa(int(configSQLTimeout.Milliseconds()))
	cfg.RuntimeParams["TimeZone"] = "UTC"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", service, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var items []ConfigItem
	if roles {
		got, err := configQuery(ctx, conn, "role", configRolesSQL)
		if err != nil {
			return nil, fmt.Errorf("roles: %w", err)
		}
		items = append(items, got...)
	}
	for _, name := range slices.Sorted(maps.Keys(queries)) {
		got, err := configQuery(ctx, conn, name, queries[name])
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", name, err)
		}
		items = append(items, got...)
	}
	return items, nil
}

// configQuery runs one query read-only, with every column as text: an item
// per row, named by prefix and the first column, the other columns its
// attributes.
func configQuery(ctx context.Context, conn *pgx.Conn, prefix, sql string) ([]ConfigItem, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, sql, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	if len(fields) == 0 {
		return nil, errors.New("the query returns no columns (the first names each row)")
	}
	cols := make([]string, len(fields))
	seen := map[string]int{}
	for i, f := range fields {
		cols[i] = f.Name
		if seen[f.Name]++; seen[f.Name] > 1 {
			cols[i] += " #" + strconv.Itoa(seen[f.Name])
		}
	}
	var items []ConfigItem
	var total int
	for rows.Next() {
		if len(items) == configMaxRows {
			return nil, fmt.Errorf("more than %d rows", configMaxRows)
		}
		raw := rows.RawValues()
		text := func(i int) string {
			if raw[i] == nil {
				return "NULL"
			}
			total += len(raw[i])
			return string(raw[i])
		}
		it := ConfigItem{Name: prefix + " " + text(0)}
		for i := 1; i < len(raw); i++ {
			it.Attrs = append(it.Attrs, ConfigAttr{cols[i], text(i)})
		}
		if total > configMaxOutput {
			return nil, errConfigTooMuch
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

// configHTTPTimeout bounds one GET, body included.
const configHTTPTimeout = 30 * time.Second

// configHTTP records each declared list's elements (items "LIST KEY").
func configHTTP(ctx context.Context, e *env.Environment, svc *env.Service, lists map[string]env.ConfigHTTPSpec) ([]ConfigItem, error) {
	client := &http.Client{
		// Only the service's 127.0.0.1 endpoint: no proxy, no redirect
		// followed anywhere else.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true, ResponseHeaderTimeout: configHTTPTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       configHTTPTimeout,
	}
	var items []ConfigItem
	for _, name := range slices.Sorted(maps.Keys(lists)) {
		got, err := configList(ctx, e, svc, client, name, lists[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		items = append(items, got...)
	}
	return items, nil
}

func configList(ctx context.Context, e *env.Environment, svc *env.Service, client *http.Client, name string, spec env.ConfigHTTPSpec) ([]ConfigItem, error) {
	port := ""
	if spec.Port != 0 {
		port = strconv.Itoa(spec.Port) + "/tcp"
	} else if sp := e.Plan.Service(svc.Name); sp != nil {
		for _, p := range sp.Ports {
			if p.Protocol == "tcp" || p.Protocol == "" {
				port = p.Key()
				break
			}
		}
	}
	if port == "" {
		return nil, fmt.Errorf("the service publishes no TCP port (ports: in %s)", e.Plan.File)
	}
	ep, err := svc.Endpoint(port)
	if err != nil {
		return nil, err
	}
	url := "http://" + ep + spec.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s answered %s", spec.Path, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, configMaxOutput+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", spec.Path, err)
	}
	if len(body) > configMaxOutput {
		return nil, fmt.Errorf("GET %s: %w", spec.Path, errConfigTooMuch)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var list []any
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("GET %s: not a JSON array: %w", spec.Path, err)
	}
	if len(list) > configMaxRows {
		return nil, fmt.Errorf("GET %s: more than %d elements", spec.Path, configMaxRows)
	}
	items := make([]ConfigItem, 0, len(list))
	for i, el := range list {
		if spec.Key == "" {
			items = append(items, ConfigItem{Name: name + " " + configJSON(el)})
			continue
		}
		obj, ok := el.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("GET %s: element %d is not an object with a %q field", spec.Path, i, spec.Key)
		}
		key, ok := obj[spec.Key]
		if !ok {
			return nil, fmt.Errorf("GET %s: element %d has no %q field", spec.Path, i, spec.Key)
		}
		it := ConfigItem{Name: name + " " + configJSON(key)}
		for _, f := range slices.Sorted(maps.Keys(obj)) {
			if f != spec.Key {
				it.Attrs = append(it.Attrs, ConfigAttr{f, configJSON(obj[f])})
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// configJSON is a JSON value as one line: a string bare, anything else as
// JSON with its object keys sorted.
func configJSON(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
