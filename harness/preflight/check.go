package preflight

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rehearse/rehearse/harness/upgrade"
)

// Option configures Check.
type Option func(*options) error

type options struct {
	inv       *Inventory
	matrix    *Matrix
	allow     []string
	installed string
	limits    Limits
}

// defaultOptions is the one place Check's defaults are set.
func defaultOptions() options { return options{limits: DefaultLimits} }

// WithInventory is the environment the package is for (FromEnvironment,
// FromImages). Default: none: unknown-unit, the environment's
// configuration files and the upgrade path are not judged, and every host
// but localhost is external.
func WithInventory(inv Inventory) Option {
	return func(o *options) error {
		o.inv = &inv
		return nil
	}
}

// WithMatrix is the deprecation matrix deprecated-config judges keys by.
// Default: none (deprecated-config is not judged).
func WithMatrix(m *Matrix) Option {
	return func(o *options) error {
		o.matrix = m
		return nil
	}
}

// WithAllow allow-lists external hosts that the package may call (a
// leading dot matches subdomains: .example.com). Default: none.
func WithAllow(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/ \t") {
				return fmt.Errorf("allow %q: not a host name", h)
			}
		}
		o.allow = append(o.allow, hosts...)
		return nil
	}
}

// WithInstalledVersion is the version installed on the package's service,
// which upgrades_from is judged against. Default: the inventory's.
func WithInstalledVersion(v string) Option {
	return func(o *options) error {
		if !validVersion(v) {
			return fmt.Errorf("installed version %q is not a version", v)
		}
		o.installed = v
		return nil
	}
}

// WithLimits bounds what is read of the package; zero fields keep their
// default. Default: DefaultLimits.
func WithLimits(l Limits) Option {
	return func(o *options) error {
		if l.Files < 0 || l.FileBytes < 0 || l.TotalBytes < 0 {
			return fmt.Errorf("limits %+v: a limit cannot be negative", l)
		}
		o.limits = Limits{Files: cmp.Or(l.Files, DefaultLimits.Files), FileBytes: cmp.Or(l.FileBytes, DefaultLimits.FileBytes),
			TotalBytes: cmp.Or(l.TotalBytes, DefaultLimits.TotalBytes)}
		return nil
	}
}

// Check reads an opened package's hazards: it walks every file of its
// workspace (symbolic links never followed, bounded by Limits), checks
// the manifest's step commands and the scripts they run, every *.sh or
// shell #! file (CheckScript), every *.sql migration (CheckSQL), shipped
// cron and timer files (CheckScheduledFile), every text file for
// credentials (gitleaks' rules), configuration files and templates against
// the deprecation matrix, and with an inventory the environment's own
// configuration and installed version. A file that does not parse is a
// parse-error finding; the others are still checked. Findings come sorted
// (Sort). The error is for what stops the whole check: an unreadable
// workspace, a package over the limits, a bad option.
func Check(ctx context.Context, p *upgrade.Package, opts ...Option) ([]Finding, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("preflight %s: %w", p.Source, err)
		}
	}
	fail := func(err error) ([]Finding, error) { return nil, fmt.Errorf("preflight %s: %w", p.Source, err) }
	root, err := os.OpenRoot(p.Dir())
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	files, err := walkPackage(root, o.limits)
	if err != nil {
		return fail(err)
	}
	creds, err := newCredentialRule()
	if err != nil {
		return fail(err)
	}
	c := &checker{ctx: ctx, o: o, m: p.Manifest(), creds: creds, byPath: map[string]*pkgFile{}, files: map[string]bool{}}
	for i := range files {
		c.byPath[files[i].Path] = &files[i]
		// Every file is in the package, binaries and files over the
		// limit too: a script that runs one is not told otherwise (what
		// is not read of them has its own finding).
		c.files[files[i].Path] = true
	}
	if c.m != nil {
		c.deprecated = newDeprecatedRule(o.matrix, c.m.Name, c.m.Version)
	}
	c.plan(files)
	return c.run(ctx)
}

// checker is one Check: the jobs it runs and the findings they made.
type checker struct {
	ctx        context.Context // the jobs stop when it is done
	o          options
	m          *upgrade.Manifest // nil: the package has no upgrade.yaml
	creds      *credentialRule
	deprecated *deprecatedRule
	byPath     map[string]*pkgFile
	files      map[string]bool // the package's files (a script may source or run one)
	jobs       []func() []Finding
}

func (c *checker) add(job func() []Finding) { c.jobs = append(c.jobs, job) }

// shellEnv is what the shell rules know of the service a script runs in
// ("" for a script that no step places).
func (c *checker) shellEnv(service string) ShellEnv {
	e := ShellEnv{Allow: c.o.allow, Units: c.o.inv.units(service), Files: c.files}
	if c.o.inv != nil {
		e.Hosts = c.o.inv.Hosts
	}
	return e
}

// plan lists the jobs: the manifest's commands and the scripts they run,
// then each file by kind, then the environment.
func (c *checker) plan(files []pkgFile) {
	scriptService := map[string][]string{} // a script a step runs -> the steps' services
	singleTx := map[string]bool{}          // a migration a step runs with psql -1
	if c.m != nil {
		src := c.byPath[upgrade.ManifestFile]
		var data []byte
		if src != nil {
			data = src.Data
		}
		for _, s := range stepCommands(c.m, data) {
			c.add(func() []Finding {
				return CheckScriptContext(c.ctx, upgrade.ManifestFile, max(s.Line, 1), []byte(s.Command), c.shellEnv(s.Service))
			})
			for _, p := range runFiles(s.Command, c.files) {
				if !slices.Contains(scriptService[p], s.Service) {
					scriptService[p] = append(scriptService[p], s.Service)
				}
			}
			for _, p := range psqlSingleTransaction(s.Command, c.files) {
				singleTx[p] = true
			}
		}
	}
	for i := range files {
		f := &files[i]
		services, run := scriptService[f.Path]
		ext := strings.ToLower(path.Ext(f.Path))
		shell, interp := shellScript(f.Path, bytes.ReplaceAll(f.Head, []byte{0}, nil))
		// A file of one of these kinds is read whatever bytes it holds:
		// dash runs a script with a NUL anywhere, bash one with a NUL past
		// its first 80 bytes.
		script := run || shell || interp != "non-shell" || ext == ".sql"
		// A program: machine code or an archive (its magic number),
		// whatever runs it. A NUL alone does not make one.
		program := f.Binary && ext != ".sh" && ext != ".bash" && ext != ".sql" && !shell && machineCode(f.Head)
		switch {
		case program && run:
			c.add(func() []Finding {
				return []Finding{{Rule: RuleCannotTell, Severity: Info, File: f.Path,
					Message: "a step runs it, but it is a program (machine code or an archive): preflight does not read it",
					Fix:     "check it by hand, or ship its source as a script"}}
			})
			continue
		case program || (f.Binary && !script):
			continue // a program or data: nothing here reads machine code
		case f.Over:
			sev := Info
			switch {
			case run || ext == ".sh" || ext == ".bash" || ext == ".sql":
				sev = Error
			case script || scheduledFile(f.Path):
				sev = Warning
			}
			c.add(func() []Finding {
				return []Finding{{Rule: RuleCannotTell, Severity: sev, File: f.Path,
					Message: fmt.Sprintf("%d bytes, over the %d bytes preflight reads of a file: not checked", f.Size, c.o.limits.FileBytes),
					Fix:     "check it by hand, or raise the limit"}}
			})
			continue
		case script || f.Binary:
			// A NUL anywhere in a script or migration, not only in the
			// first 8,000 bytes that decide Binary: the parsers stop at it.
			if clean, nf, ok := stripNUL(f.Path, 1, f.Data); ok {
				f.Data = clean
				c.add(func() []Finding { return []Finding{nf} })
			}
		}
		c.add(func() []Finding { return c.creds.check(c.ctx, f.File) })
		if run && interp == "non-shell" {
			// No #! line: sh FILE reads it as a script, and so does the
			// shell that ./FILE fails to exec (ENOEXEC).
			shell = true
		}
		switch {
		case ext == ".sql":
			var opts []SQLOption
			if singleTx[f.Path] {
				opts = append(opts, WithTransaction())
			}
			c.add(func() []Finding { return CheckSQLWith(f.Path, f.Data, append(opts, WithContext(c.ctx))...) })
		case scheduledFile(f.Path):
			// A cron file, timer or cron.daily script: CheckScheduledFile
			// checks its jobs' commands (a script whole) as shell too.
			c.add(func() []Finding { return c.shellEnv("").CheckScheduledFile(f.Path, f.Data) })
		case shell:
			if !run {
				services = []string{""}
			}
			for _, svc := range services {
				c.add(func() []Finding { return CheckScriptContext(c.ctx, f.Path, 1, f.Data, c.shellEnv(svc)) })
			}
		case run:
			c.add(func() []Finding {
				return []Finding{{Rule: RuleCannotTell, Severity: Info, File: f.Path, Line: 1,
					Message: fmt.Sprintf("a step runs it, but it is a %s script, which preflight does not read", interp),
					Fix:     "check it by hand, or ship it as a shell script"}}
			})
		}
		if format, _ := configFormat(f.Path); format != "" && f.Path != upgrade.ManifestFile && c.deprecated != nil {
			c.add(func() []Finding { return c.deprecated.check(f.Path, f.Path, f.Data) })
		}
	}
	c.planEnvironment()
}

// planEnvironment adds the checks of the environment: the configuration
// of the services the package's steps run in, and the installed version of
// the package's service.
func (c *checker) planEnvironment() {
	if c.m == nil {
		return
	}
	inv := c.o.inv
	if c.deprecated != nil && inv.known() {
		var services []string
		for _, s := range slices.Concat(c.m.Steps, c.m.Rollback, c.m.Cleanup) {
			if !slices.Contains(services, s.Service) {
				services = append(services, s.Service)
			}
		}
		if c.m.Service != "" && !slices.Contains(services, c.m.Service) {
			services = append(services, c.m.Service)
		}
		for _, svc := range services {
			for _, cf := range inv.Services[svc].Configs {
				c.add(func() []Finding { return c.deprecated.check("", svc+":"+cf.Path, cf.Data) })
			}
			for _, u := range inv.Services[svc].Unread {
				c.add(func() []Finding {
					return []Finding{{Rule: RuleCannotTell, Severity: Info,
						Message: fmt.Sprintf("%s:%s: not checked for deprecated keys: %s", svc, u.Path, u.Reason),
						Fix:     "check it by hand"}}
				})
			}
		}
	}
	svc := cmp.Or(c.m.Service, c.m.Steps[0].Service)
	rule := upgradePathRule{from: c.m.UpgradesFrom, line: c.keyLine("upgrades_from")}
	switch {
	case c.o.installed != "":
		c.add(func() []Finding { return rule.check(svc, c.o.installed, "as given") })
	case inv.known():
		si, ok := inv.Services[svc]
		from := si.VersionFrom
		if !ok {
			from = "the environment has no service " + svc
		}
		c.add(func() []Finding { return rule.check(svc, si.Version, from) })
	}
}

// keyLine is the line of a top-level key of upgrade.yaml (0: not found).
func (c *checker) keyLine(key string) int {
	f := c.byPath[upgrade.ManifestFile]
	if f == nil {
		return 0
	}
	for i, line := range bytes.Split(f.Data, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(key+":")) {
			return i + 1
		}
	}
	return 0
}

// run runs the jobs on every CPU and sorts what they found.
func (c *checker) run(ctx context.Context) ([]Finding, error) {
	var (
		mu  sync.Mutex
		out []Finding
		wg  sync.WaitGroup
	)
	next := make(chan func() []Finding)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for job := range next {
				if ctx.Err() != nil {
					continue // drained: Check returns ctx's error
				}
				fs := job()
				mu.Lock()
				out = append(out, fs...)
				mu.Unlock()
			}
		})
	}
	var err error
feed:
	for _, job := range c.jobs {
		select {
		case next <- job:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		err = ctx.Err() // done while the last jobs ran: their findings are partial
	}
	if err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	Sort(out)
	return slices.CompactFunc(out, func(a, b Finding) bool { return a == b }), nil
}

// binaryMagic are the first bytes of programs and archives a step may run
// or unpack: ELF, PE, Mach-O (both byte orders, 32 and 64 bits, fat),
// gzip, zip, xz, zstd, bzip2.
var binaryMagic = [][]byte{[]byte("\x7fELF"), []byte("MZ"), {0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf},
	{0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe}, {0xca, 0xfe, 0xba, 0xbe}, {0x1f, 0x8b}, []byte("PK\x03\x04"),
	[]byte("\xfd7zXZ\x00"), {0x28, 0xb5, 0x2f, 0xfd}, []byte("BZh")}

// machineCode says whether a file with a NUL byte is truly binary rather
// than a script with stray NULs: a program's or archive's magic number.
// A NUL on the first line is not enough: bash refuses a file with a NUL
// in its first 80 bytes, but dash (sh on Debian) runs it, skipping NULs.
func machineCode(data []byte) bool {
	return slices.ContainsFunc(binaryMagic, func(m []byte) bool { return bytes.HasPrefix(data, m) })
}

// shellScript says whether a file is a shell script (*.sh, *.bash, or a
// shell #! line), and names the interpreter of another #! line.
func shellScript(name string, data []byte) (bool, string) {
	switch strings.ToLower(path.Ext(name)) {
	case ".sh", ".bash":
		return true, "sh"
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	rest, ok := bytes.CutPrefix(line, []byte("#!"))
	if !ok {
		return false, "non-shell"
	}
	f := strings.Fields(string(rest))
	if len(f) == 0 {
		return false, "non-shell"
	}
	interp := path.Base(f[0])
	if interp == "env" {
		interp = "env"
		for _, a := range f[1:] {
			if !strings.HasPrefix(a, "-") {
				interp = path.Base(a)
				break
			}
		}
	}
	return slices.Contains(ShellInterpreters, interp), interp
}

// scheduledFile says whether a package file is a schedule it ships: a
// crontab or a file for /etc/cron.d, /etc/cron.daily (and so on), or a
// systemd timer.
func scheduledFile(name string) bool {
	base := strings.ToLower(path.Base(name))
	if path.Ext(base) == ".timer" || base == "crontab" || path.Ext(base) == ".cron" {
		return true
	}
	for _, dir := range strings.Split(path.Dir(strings.ToLower(name)), "/") {
		if dir == "cron" || dir == "crontab" || dir == "crontabs" || strings.HasPrefix(dir, "cron.") {
			return true
		}
	}
	return false
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlErrorLine is the line a YAML error names (0: none).
func yamlErrorLine(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}
