package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
)

// configCompose writes a compose file with one service "app" whose
// x-rehearse block is ext (YAML, indented under it) and loads its plan.
func configCompose(t *testing.T, ext string) (string, *env.Plan, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "compose.yaml")
	body := "services:\n  app:\n    image: rehearse-test/app:1\n    ports: [\"8080\"]\n    x-rehearse:\n"
	for line := range strings.SplitSeq(strings.TrimSpace(ext), "\n") {
		body += "      " + line + "\n"
	}
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := env.LoadPlan(context.Background(), file)
	return file, plan, err
}

func TestConfigDeclarationsRejected(t *testing.T) {
	tests := []struct {
		name, ext string
		want      string // the message names the key
	}{
		{"relative", "config: [etc/app]", `config: files[0]: "etc/app" is not an absolute path`},
		{"unclean", "config: {files: [/etc/app, /opt/app/../bin]}", `config: files[1]: "/opt/app/../bin" is not clean (write "/opt/bin")`},
		{"trailing slash", "config: [/etc/app/]", `files[0]: "/etc/app/" is not clean`},
		{"root", "config: [/]", "files[0]: / is the whole file system"},
		{"nested", "config: [/etc, /etc/app]", `files[1]: "/etc/app" overlaps files[0] "/etc"`},
		{"duplicate", "config: [/etc/app, /etc/app]", `files[1]: "/etc/app" overlaps files[0]`},
		{"units without systemd", "config: {units: true}", "config: units: true needs init: systemd"},
		{"unknown key", "config: {files: [/etc/app], cron: true}", "cron"},
		{"empty query", `config: {queries: {flags: " "}}`, "config: queries.flags: the query is empty"},
		{"bad query name", `config: {queries: {"my flags": "SELECT 1"}}`, `queries: "my flags" is not a name`},
		{"reserved name", `config: {queries: {role: "SELECT 1"}}`, `queries: "role" is not a name`},
		{"http not a path", "config: {http: {hooks: {path: webhooks}}}", `config: http.hooks.path: "webhooks" is not a path`},
		{"http port unpublished", "config: {http: {hooks: {path: /webhooks, port: 9000}}}", "config: http.hooks.port: the service does not publish port 9000"},
		{"http unknown key", "config: {http: {hooks: {path: /webhooks, keys: url}}}", "keys"},
		{"http list", "config: {http: [/webhooks]}", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, _, err := configCompose(t, tt.ext)
			if err == nil {
				t.Fatal("planned without error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, file+":5: services.app.x-rehearse: ") {
				t.Errorf("error %q does not name %s, line 5, and the service's x-rehearse", msg, file)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
		})
	}
}

func TestConfigDeclarationsAccepted(t *testing.T) {
	_, plan, err := configCompose(t, `
init: systemd
config:
  files: [/etc/app, /opt/app/bin, /etc/apparmor]
  units: true
  crontab: true
  roles: true
  queries: {feature_flags: "SELECT name, enabled FROM feature_flags"}
  http: {webhooks: {path: /webhooks, key: url}, all: {path: /all, port: 8080}}
`)
	if err != nil {
		t.Fatal(err)
	}
	c := plan.Service("app").Ext.Config
	if c == nil || !slices.Equal(c.Files, []string{"/etc/app", "/opt/app/bin", "/etc/apparmor"}) || !c.Units || !c.Crontab || !c.Roles ||
		c.Queries["feature_flags"] == "" || c.HTTP["webhooks"] != (env.ConfigHTTPSpec{Path: "/webhooks", Key: "url"}) ||
		c.HTTP["all"] != (env.ConfigHTTPSpec{Path: "/all", Port: 8080}) {
		t.Errorf("config = %+v", c)
	}

	// The short form is a list of paths.
	_, plan, err = configCompose(t, "config: [/etc/app]")
	if err != nil {
		t.Fatal(err)
	}
	if c := plan.Service("app").Ext.Config; c == nil || !slices.Equal(c.Files, []string{"/etc/app"}) || c.Units {
		t.Errorf("config: [/etc/app] = %+v", c)
	}
}

func configPrintOf(items ...ConfigItem) *ConfigPrint {
	return &ConfigPrint{Items: configNumber(items)}
}

func TestConfigDiffLines(t *testing.T) {
	file := func(name, mode, sum string) ConfigItem {
		return ConfigItem{Service: "billing", Name: name, Attrs: []ConfigAttr{{"mode", mode}, {"owner", "root:billing"}, {"sha256", sum}, {"type", "file"}}}
	}
	unit := func(state string) ConfigItem {
		return ConfigItem{Service: "billing", Name: "unit billing-api.service", Attrs: []ConfigAttr{{"enabled", "enabled"}, {"state", state}}}
	}
	hook := func(url, id string) ConfigItem {
		return ConfigItem{Service: "payments", Name: "webhooks " + url, Attrs: []ConfigAttr{{"id", id}}}
	}
	before := configPrintOf(
		file("/etc/billing/billing.conf", "0640", strings.Repeat("a", 64)),
		file("/etc/billing/billing.env", "0640", strings.Repeat("b", 64)),
		unit("active"),
		ConfigItem{Service: "db", Name: "role postgres", Attrs: []ConfigAttr{{"attributes", "superuser, login"}}},
		ConfigItem{Service: "db", Name: "feature_flags new_invoices", Attrs: []ConfigAttr{{"enabled", "f"}}},
		hook("http://billing:8080/hook", "1"),
	)
	after := configPrintOf(
		file("/etc/billing/billing.conf", "0644", strings.Repeat("c", 64)),
		unit("failed"),
		ConfigItem{Service: "db", Name: "role postgres", Attrs: []ConfigAttr{{"attributes", "superuser, login"}}},
		ConfigItem{Service: "db", Name: "role billing_migrator_tmp", Attrs: []ConfigAttr{{"attributes", "login"}}},
		ConfigItem{Service: "db", Name: "feature_flags new_invoices", Attrs: []ConfigAttr{{"enabled", "t"}, {"note", ""}}},
		hook("http://billing:8080/hook", "1"),
		hook("http://billing:8080/hook", "2"),
		ConfigItem{Service: "billing", Name: "/etc/billing/evil\n/etc/billing/billing.conf: fine", Attrs: []ConfigAttr{{"type", "file"}}},
	)
	want := []string{
		"billing: /etc/billing/billing.conf: mode 0640 -> 0644, sha256 changed",
		"billing: /etc/billing/billing.env removed",
		`billing: "/etc/billing/evil\n/etc/billing/billing.conf: fine" added`,
		"billing: unit billing-api.service: state active -> failed",
		`db: feature_flags new_invoices: enabled f -> t, note (none) -> ""`,
		"db: role billing_migrator_tmp added",
		"payments: webhooks http://billing:8080/hook #2 added",
	}
	d := before.Diff(after)
	if got := d.Lines(); !slices.Equal(got, want) {
		t.Errorf("diff:\n%s\nwant:\n%s", d, strings.Join(want, "\n"))
	}
	if d := after.Diff(after); len(d) != 0 || d.String() != "" {
		t.Errorf("a print diffs against itself: %q", d)
	}
	if d := before.Diff(before); len(d) != 0 {
		t.Errorf("a print diffs against itself: %q", d)
	}
	// Backwards: what was added is removed.
	if got := after.Diff(before).Lines(); !slices.Contains(got, "db: role billing_migrator_tmp removed") ||
		!slices.Contains(got, "billing: unit billing-api.service: state failed -> active") {
		t.Errorf("reverse diff:\n%s", strings.Join(got, "\n"))
	}

	long := strings.Repeat("x", configShownMax+1)
	if got := (ConfigAttrChange{Name: "events", Before: "[]", After: long}).String(); got != "events changed" {
		t.Errorf("a long value shows as %q, want it only said to change", got)
	}

	// A print marshals and comes back the same.
	b, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	var back ConfigPrint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(&back); len(d) != 0 {
		t.Errorf("a print through JSON diffs: %s", d)
	}
}

// A service that answers too much, too slowly, not a list, or elsewhere
// fails its fingerprint with a clear error, in bounded memory and time.
func TestConfigHTTPBounded(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"url": "http://a/<x>", "id": 1, "events": ["paid"]}, {"url": "http://b", "id": 2}, {"url": "http://a/<x>", "id": 3}]`))
	})
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("["))
		chunk := []byte(strings.Repeat(`"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",`, 1000))
		for range 200 { // ~10 MB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.Write([]byte(`"x"]`))
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	})
	mux.HandleFunc("GET /object", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"url": "x"}`)) })
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	plan := &env.Plan{File: "compose.yaml", Services: []*env.ServicePlan{{Name: "payments", Ports: []env.Port{{Target: 8090, Protocol: "tcp"}}}}}
	e := &env.Environment{Plan: plan}
	svc := &env.Service{Name: "payments", Ports: map[string]string{"8090/tcp": strings.TrimPrefix(srv.URL, "http://")}}
	take := func(ctx context.Context, path, key string) ([]ConfigItem, error) {
		return configHTTP(ctx, e, svc, map[string]env.ConfigHTTPSpec{"hooks": {Path: path, Key: key}})
	}
	ctx := context.Background()

	items, err := take(ctx, "/ok", "url")
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		items[i].Service = "payments"
	}
	var names []string
	for _, it := range configNumber(items) {
		names = append(names, it.Name)
	}
	if want := []string{"hooks http://a/<x>", "hooks http://a/<x> #2", "hooks http://b"}; !slices.Equal(names, want) {
		t.Errorf("items %q, want %q", names, want)
	}
	if got := items[0].Attrs; !slices.Equal(got, []ConfigAttr{{"events", `["paid"]`}, {"id", "1"}}) {
		t.Errorf("attributes %q", got)
	}
	if items, err := take(ctx, "/ok", ""); err != nil || len(items) != 3 || !strings.HasPrefix(items[0].Name, `hooks {"events":["paid"],"id":1,"url":"http://a/<x>"}`) {
		t.Errorf("without a key: %v %q", err, items)
	}

	if _, err := take(ctx, "/huge", ""); !errors.Is(err, errConfigTooMuch) {
		t.Errorf("a huge answer: %v, want %v", err, errConfigTooMuch)
	}
	if _, err := take(ctx, "/object", "url"); err == nil || !strings.Contains(err.Error(), "not a JSON array") {
		t.Errorf("an object: %v", err)
	}
	if _, err := take(ctx, "/redirect", ""); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("a redirect: %v, want it refused, not followed", err)
	}
	if _, err := take(ctx, "/ok", "name"); err == nil || !strings.Contains(err.Error(), `element 0 has no "name" field`) {
		t.Errorf("a missing key: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := take(short, "/slow", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a slow answer: %v, want the deadline", err)
	}
}

func TestConfigLimitedWriter(t *testing.T) {
	var w configLimited
	if _, err := w.Write(make([]byte, configMaxOutput)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errConfigTooMuch) {
		t.Errorf("a write past the bound: %v", err)
	}
	if w.Len() != configMaxOutput {
		t.Errorf("holds %d bytes", w.Len())
	}
}

func TestConfigParseUnits(t *testing.T) {
	loaded := `billing-api.service        loaded    active   running Billing API
● broken.service           loaded    failed   failed  Broken
getty@tty1.service         loaded    inactive dead    Getty on tty1
modprobe@fuse.service      loaded    active   exited  Load Kernel Module fuse
apt-daily.timer            loaded    active   waiting Daily apt download activities
ghost.service              not-found inactive dead    ghost.service
`
	files := `apt-daily.timer            enabled  enabled
billing-api.service        enabled  enabled
broken.service             disabled enabled
getty@.service             enabled  enabled
old.service                masked   enabled
`
	var got []string
	for _, it := range configParseUnits(loaded, files) {
		got = append(got, fmt.Sprintf("%s %v", it.Name, it.Attrs))
	}
	want := []string{
		"unit apt-daily.timer [{enabled enabled} {state active}]",
		"unit billing-api.service [{enabled enabled} {state active}]",
		"unit broken.service [{enabled disabled} {state failed}]",
		"unit getty@.service [{enabled enabled} {state inactive}]",
		"unit modprobe@fuse.service [{state active}]",
		"unit old.service [{enabled masked} {state inactive}]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("units:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
