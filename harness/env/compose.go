package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
