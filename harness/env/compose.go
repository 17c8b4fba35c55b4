package env

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/go-viper/mapstructure/v2"

	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/sandbox"
)

// ExtensionKey is the compose extension that carries rehearse's per-service settings.
const ExtensionKey = "x-rehearse"

// Extension is the `x-rehearse` block of one compose service.
type Extension struct {
	// Init is "systemd" for a host that runs systemd as PID 1.
	Init string `mapstructure:"init"`
	// Egress lets the service reach networks outside the sandbox.
	Egress bool `mapstructure:"egress"`
	// Version is the command that prints the service's version.
	Version []string `mapstructure:"version"`
	// Go lists Go programs built from source and packed into the service's
	// image; each main is relative to the compose file and must stay inside
	// the project directory.
	Go []image.GoBinary `mapstructure:"go"`
	// Base is the image Go programs are packed onto when the service has no
	// build: section. Default: debian:bookworm-slim.
	Base string `mapstructure:"base"`
	// Probe is how rehearsals watch the service by default (Given "SVC"
	// is probed every DURATION). Default: its healthcheck command.
	Probe *ProbeSpec `mapstructure:"probe"`
	// Disk is a size-limited mount whose filling is a fault (When the disk
	// of "SVC" is full).
	Disk *DiskSpec `mapstructure:"disk"`
	// Config is what the service's configuration fingerprint covers
	// (harness/snapshot): `config: [/etc/app]` is short for
	// `config: {files: [/etc/app]}`.
	Config *ConfigSpec `mapstructure:"config"`
}

// ProbeSpec is a service's declared probe: exactly one of HTTP (a path on
// the service's first published port, such as /health), TCP (a container
// port) or SQL (a query on a PostgreSQL service).
type ProbeSpec struct {
	HTTP string `mapstructure:"http"`
	TCP  int    `mapstructure:"tcp"`
	SQL  string `mapstructure:"sql"`
}

// DiskSpec is a size-limited mount: Path inside the container (absolute
// and clean, not /), Size such as "64m" or "1g" (at most MaxDiskSize). The
// run gives the service a tmpfs volume of that size there (see Disk).
type DiskSpec struct {
	Path string `mapstructure:"path"`
	Size string `mapstructure:"size"`
}

// LoadOption configures Load.
type LoadOption func(*loadOptions) error

type loadOptions struct {
	profiles []string
	env      []string
	name     string
}

// WithProfiles activates compose profiles. Default: none, so only services
// without a profile run.
func WithProfiles(profiles ...string) LoadOption {
	return func(o *loadOptions) error {
		o.profiles = append(o.profiles, profiles...)
		return nil
	}
}

// WithEnv adds KEY=VALUE pairs used for interpolation; they win over the
// project's .env file. The process environment is never used, so a host's
// secrets cannot reach a container through ${VAR} or a bare environment
// entry. Default: none.
func WithEnv(kv ...string) LoadOption {
	return func(o *loadOptions) error {
		o.env = append(o.env, kv...)
		return nil
	}
}

// WithProjectName overrides the compose project name. Default: the compose
// file's `name:` or its directory's name.
func WithProjectName(name string) LoadOption {
	return func(o *loadOptions) error {
		o.name = name
		return nil
	}
}

// Load reads a compose file with the official compose-go loader, after
// sandbox.CheckReferences has made sure the loader reads nothing outside the
// project (sandbox.CheckLoaded confirms it afterwards for the services' env
// and label files). Interpolation uses the project's .env and WithEnv only;
// paths the loader reads may not use variables.
func Load(ctx context.Context, path string, opts ...LoadOption) (*types.Project, error) {
	o := loadOptions{}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &FileError{File: path, Msg: "compose file does not exist"}
		}
		return nil, &FileError{File: path, Msg: err.Error()}
	}
	// Interpolation sees only what the project holds and what the caller
	// passes: never this process's environment (a CI job's secrets).
	popts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv(o.env),
	}
	dotEnv, err := projectDotEnv(path, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	if dotEnv != "" {
		popts = append(popts, cli.WithEnvFiles(dotEnv), cli.WithDotEnv)
	}
	popts = append(popts, cli.WithProfiles(o.profiles))
	if o.name != "" {
		popts = append(popts, cli.WithName(o.name))
	}
	po, err := cli.NewProjectOptions([]string{abs}, popts...)
	if err != nil {
		return nil, &FileError{File: path, Msg: err.Error()}
	}
	// compose-go reads env files, included and extended files as it loads
	// and quotes them in its errors: nothing outside the project may reach it.
	if err := sandbox.CheckReferences(path); err != nil {
		return nil, err
	}
	project, err := po.LoadProject(ctx)
	if err != nil {
		return nil, composeError(path, filepath.Dir(abs), err)
	}
	// A second line: the env and label files the loader read are inside.
	if err := sandbox.CheckLoaded(path, project); err != nil {
		return nil, err
	}
	return project, nil
}

// projectDotEnv is the project's .env file, or "" when there is none. A .env
// that is a link out of the project is refused: its content would be read.
func projectDotEnv(file, dir string) (string, error) {
	dotEnv := filepath.Join(dir, ".env")
	if _, err := os.Lstat(dotEnv); err != nil {
		return "", nil
	}
	if err := sandbox.CheckInside(file, dir, nil, "the project's .env file", dotEnv); err != nil {
		return "", err
	}
	if st, err := os.Stat(dotEnv); err != nil || st.IsDir() {
		return "", nil
	}
	return dotEnv, nil
}

// LoadPlan loads a compose file and plans its sandboxed run: Load, then
// NewPlan with the file named as the user named it.
func LoadPlan(ctx context.Context, file string, opts ...LoadOption) (*Plan, error) {
	project, err := Load(ctx, file, opts...)
	if err != nil {
		return nil, err
	}
	return NewPlan(file, project)
}

// ExtensionOf decodes a service's x-rehearse block, rejecting unknown keys.
func ExtensionOf(svc types.ServiceConfig) (Extension, error) {
	var ext Extension
	raw, ok := svc.Extensions[ExtensionKey]
	if !ok {
		return ext, nil
	}
	raw = configShorthand(raw)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		ErrorUnused:      true,
		WeaklyTypedInput: false,
		Result:           &ext,
	})
	if err != nil {
		return ext, err
	}
	if err := dec.Decode(raw); err != nil {
		// mapstructure reports on several lines; errors here are one line.
		msg := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):")
		return ext, errors.New(strings.Join(strings.Fields(msg), " "))
	}
	switch ext.Init {
	case "", "systemd":
	default:
		return ext, fmt.Errorf("init: %q is not supported (only \"systemd\")", ext.Init)
	}
	for i, g := range ext.Go {
		if g.Main == "" || g.Path == "" {
			return ext, fmt.Errorf("go[%d]: both main and path are required", i)
		}
	}
	if err := ext.Probe.check(); err != nil {
		return ext, fmt.Errorf("probe: %w", err)
	}
	if err := ext.Disk.check(); err != nil {
		return ext, fmt.Errorf("disk: %w", err)
	}
	if err := ext.Config.check(svc, ext); err != nil {
		return ext, fmt.Errorf("config: %w", err)
	}
	return ext, nil
}

func (p *ProbeSpec) check() error {
	if p == nil {
		return nil
	}
	n := 0
	if p.HTTP != "" {
		n++
		if !strings.HasPrefix(p.HTTP, "/") {
			return fmt.Errorf("http: %q is not a path (it starts with /)", p.HTTP)
		}
	}
	if p.TCP != 0 {
		n++
		if p.TCP < 1 || p.TCP > 65535 {
			return fmt.Errorf("tcp: %d is not a port", p.TCP)
		}
	}
	if p.SQL != "" {
		n++
	}
	if n != 1 {
		return errors.New("give exactly one of http, tcp and sql")
	}
	return nil
}

// ConfigSpec is what a service's configuration fingerprint
// (harness/snapshot.Config) covers: the files under Files, and the state
// that the other keys name. Each is read only, never changed.
type ConfigSpec struct {
	// Files are absolute, clean paths inside the service (not /, none
	// inside another): every file, directory and link under each, with its
	// type, owner, group, mode, and a regular file's sha256 or a link's
	// target. Links are recorded, never followed.
	Files []string `mapstructure:"files"`
	// Units are the systemd units (services, sockets, timers, paths,
	// targets) with their active and enabled states; it needs init: systemd.
	Units bool `mapstructure:"units"`
	// Crontab is every crontab entry: /etc/crontab, /etc/cron.d and the
	// users' crontabs under /var/spool/cron.
	Crontab bool `mapstructure:"crontab"`
	// Roles are the PostgreSQL roles (not pg_*) with their attributes and
	// memberships, on a PostgreSQL service (reached as harness/dataset
	// reaches it).
	Roles bool `mapstructure:"roles"`
	// Queries are named SQL queries on a PostgreSQL service, run read-only:
	// each row is an item that its first column names; the other columns
	// are its attributes.
	Queries map[string]string `mapstructure:"queries"`
	// HTTP are named lists the service answers over HTTP: a GET whose JSON
	// array holds one item per element.
	HTTP map[string]ConfigHTTPSpec `mapstructure:"http"`
}

// ConfigHTTPSpec is a list a service answers: GET Path on Port (a published
// container port; 0: the service's first published TCP port) answers a
// JSON array. Key is the field of each element (an object) that names it,
// its other fields being its attributes; "" names each element by all of it.
type ConfigHTTPSpec struct {
	Path string `mapstructure:"path"`
	Key  string `mapstructure:"key"`
	Port int    `mapstructure:"port"`
}

// configShorthand rewrites `config: [paths]` as `config: {files: [paths]}`,
// leaving the compose project's own map alone.
func configShorthand(raw any) any {
	m, ok := raw.(map[string]any)
	if !ok {
		return raw
	}
	list, ok := m["config"].([]any)
	if !ok {
		return raw
	}
	out := maps.Clone(m)
	out["config"] = map[string]any{"files": list}
	return out
}

// configName is what a query or list may be called: it names items in a
// fingerprint's diff.
var configName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// reservedConfigName is a name the fingerprint's own items use.
func reservedConfigName(name string) bool {
	return name == "unit" || name == "crontab" || name == "role"
}

func (c *ConfigSpec) check(svc types.ServiceConfig, ext Extension) error {
	if c == nil {
		return nil
	}
	for i, p := range c.Files {
		switch {
		case !path.IsAbs(p):
			return fmt.Errorf("files[%d]: %q is not an absolute path", i, p)
		case path.Clean(p) != p:
			return fmt.Errorf("files[%d]: %q is not clean (write %q)", i, p, path.Clean(p))
		case p == "/":
			return fmt.Errorf("files[%d]: / is the whole file system: name the directories that hold the configuration", i)
		}
		for j, q := range c.Files[:i] {
			if p == q || strings.HasPrefix(p, q+"/") || strings.HasPrefix(q, p+"/") {
				return fmt.Errorf("files[%d]: %q overlaps files[%d] %q", i, p, j, q)
			}
		}
	}
	if c.Units && ext.Init != "systemd" {
		return errors.New("units: true needs init: systemd")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Queries)) {
		if !configName.MatchString(name) || reservedConfigName(name) {
			return fmt.Errorf("queries: %q is not a name (letters, digits, _ . -; not unit, crontab or role)", name)
		}
		if strings.TrimSpace(c.Queries[name]) == "" {
			return fmt.Errorf("queries.%s: the query is empty", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.HTTP)) {
		h := c.HTTP[name]
		if !configName.MatchString(name) || reservedConfigName(name) {
			return fmt.Errorf("http: %q is not a name (letters, digits, _ . -; not unit, crontab or role)", name)
		}
		if _, ok := c.Queries[name]; ok {
			return fmt.Errorf("http.%s: a query has that name too", name)
		}
		if !strings.HasPrefix(h.Path, "/") {
			return fmt.Errorf("http.%s.path: %q is not a path (it starts with /)", name, h.Path)
		}
		if h.Port < 0 || h.Port > 65535 {
			return fmt.Errorf("http.%s.port: %d is not a port", name, h.Port)
		}
		published := false
		for _, p := range svc.Ports {
			if (p.Protocol == "" || p.Protocol == "tcp") && (h.Port == 0 || int(p.Target) == h.Port) {
				published = true
			}
		}
		if !published {
			if h.Port == 0 {
				return fmt.Errorf("http.%s: the service publishes no TCP port (ports:)", name)
			}
			return fmt.Errorf("http.%s.port: the service does not publish port %d (ports:)", name, h.Port)
		}
	}
	return nil
}
