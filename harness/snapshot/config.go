package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rehearse/rehearse/harness/env"
)

// ConfigPrint is the configuration fingerprint of one or more services: one
// item per file, unit, crontab entry, role, query row and list element that
// the services' x-rehearse config declares (env.ConfigSpec). Two prints of
// the same services diff item by item. It marshals to JSON.
type ConfigPrint struct {
	Taken    time.Time    `json:"taken"`
	Services []string     `json:"services"` // those fingerprinted, in plan order
	Items    []ConfigItem `json:"items"`    // by service, then name
}

// ConfigItem is one thing a fingerprint covers. Name says what it is:
// a file's absolute path ("/etc/billing/billing.conf"), "unit NAME",
// "crontab FILE: ENTRY", "role NAME", or a declared query or list's name
// and the item's key ("feature_flags new_invoices", "webhooks URL"). A
// second item of the same name (a duplicate row, a webhook registered
// twice) is NAME #2, and so on.
type ConfigItem struct {
	Service string       `json:"service"`
	Name    string       `json:"name"`
	Attrs   []ConfigAttr `json:"attrs,omitempty"` // by name, except a query row's (its columns' order)
}

// ConfigAttr is one attribute of an item: a file's "type", "owner", "mode",
// "sha256" or link "target"; a unit's "state" and "enabled"; a role's
// "attributes", "member of" and "settings"; a query row's columns; a list
// element's fields (as JSON, a string bare).
type ConfigAttr struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ConfigDiff is what changed between two configuration fingerprints, one
// change per item, by service, then item.
type ConfigDiff []ConfigChange

// ConfigChange is an item added, removed or changed.
type ConfigChange struct {
	Service string             `json:"service"`
	Item    string             `json:"item"`
	Change  string             `json:"change"`          // ConfigAdded, ConfigRemoved or ConfigChanged
	Attrs   []ConfigAttrChange `json:"attrs,omitempty"` // what changed of a ConfigChanged item
}

// The kinds of ConfigChange.
const (
	ConfigAdded   = "added"
	ConfigRemoved = "removed"
	ConfigChanged = "changed"
)

// ConfigAttrChange is one attribute of a changed item; an attribute that
// one side lacks has the value ConfigNone there.
type ConfigAttrChange struct {
	Name   string `json:"name"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// ConfigNone stands for an attribute an item lacks.
const ConfigNone = "(none)"

// configShownMax is the longest value a diff line shows; a longer one, and a
// checksum, is only said to have changed.
const configShownMax = 80

// Config takes the configuration fingerprint of a service, as its x-rehearse
// config declares it. It only reads: files through the engine's archive
// of the service's file system (no tool of the image runs), units with
// systemctl in the service, SQL in a read-only transaction, lists with a GET.
// Every part is bounded in time and size (a service that answers too much
// or too slowly fails the fingerprint; nothing is silently cut short).
func Config(ctx context.Context, e *env.Environment, service string) (*ConfigPrint, error) {
	p := &ConfigPrint{Taken: time.Now().UTC(), Services: []string{service}}
	items, err := configService(ctx, e, service)
	if err != nil {
		return nil, err
	}
	p.Items = items
	return p, nil
}

// ConfigAll takes the configuration fingerprint of every service whose
// x-rehearse declares a config, in plan order: empty when none does.
func ConfigAll(ctx context.Context, e *env.Environment) (*ConfigPrint, error) {
	p := &ConfigPrint{Taken: time.Now().UTC(), Services: []string{}, Items: []ConfigItem{}}
	for _, sp := range e.Plan.Services {
		if sp.Ext.Config == nil {
			continue
		}
		items, err := configService(ctx, e, sp.Name)
		if err != nil {
			return nil, err
		}
		p.Services = append(p.Services, sp.Name)
		p.Items = append(p.Items, items...)
	}
	configSort(p.Items)
	return p, nil
}

// configService fingerprints one service: every declared part in turn.
func configService(ctx context.Context, e *env.Environment, service string) ([]ConfigItem, error) {
	sp := e.Plan.Service(service)
	if sp == nil {
		return nil, fmt.Errorf("config fingerprint: no service %q in %s", service, e.Plan.File)
	}
	spec := sp.Ext.Config
	if spec == nil {
		return nil, fmt.Errorf("config fingerprint of %s: it declares nothing to fingerprint (x-rehearse: config: in %s)", service, e.Plan.File)
	}
	svc := e.Service(service)
	if svc == nil {
		return nil, fmt.Errorf("config fingerprint of %s: the service is not running", service)
	}
	type part struct {
		name string
		on   bool
		take func(context.Context) ([]ConfigItem, error)
	}
	parts := []part{
		{"files", len(spec.Files) > 0, func(ctx context.Context) ([]ConfigItem, error) { return configFiles(ctx, svc, spec.Files) }},
		{"units", spec.Units, func(ctx context.Context) ([]ConfigItem, error) { return configUnits(ctx, svc) }},
		{"crontab", spec.Crontab, func(ctx context.Context) ([]ConfigItem, error) { return configCrontab(ctx, svc) }},
		{"roles and queries", spec.Roles || len(spec.Queries) > 0, func(ctx context.Context) ([]ConfigItem, error) {
			return configSQL(ctx, e, service, spec.Roles, spec.Queries)
		}},
		{"http", len(spec.HTTP) > 0, func(ctx context.Context) ([]ConfigItem, error) { return configHTTP(ctx, e, svc, spec.HTTP) }},
	}
	var items []ConfigItem
	for _, pt := range parts {
		if !pt.on {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, configPartTimeout)
		got, err := pt.take(pctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("took longer than %v: %w", configPartTimeout, err)
			}
			return nil, fmt.Errorf("config fingerprint of %s: %s: %w", service, pt.name, err)
		}
		items = append(items, got...)
	}
	for i := range items {
		items[i].Service = service
	}
	return configNumber(items), nil
}

// configPartTimeout bounds each part of a service's fingerprint.
const configPartTimeout = 2 * time.Minute

// configNumber sorts items and names the second and later items of the
// same name NAME #2, NAME #3: none is lost, and a duplicate is named.
func configNumber(items []ConfigItem) []ConfigItem {
	configSort(items)
	seen := map[string]int{}
	for i := range items {
		k := items[i].Service + "\x00" + items[i].Name
		seen[k]++
		if n := seen[k]; n > 1 {
			items[i].Name += " #" + strconv.Itoa(n)
		}
	}
	configSort(items)
	return items
}

// configSort orders items by service, name, then attributes (so that
// duplicates number the same way every time).
func configSort(items []ConfigItem) {
	slices.SortStableFunc(items, func(a, b ConfigItem) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Name, b.Name),
			slices.CompareFunc(a.Attrs, b.Attrs, func(x, y ConfigAttr) int {
				return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Value, y.Value))
			}))
	})
}

// Diff is what changed from p to after: items added, removed, and changed
// with the attributes that changed. Prints of the same services compare;
// an item of a service only one of them covers is added or removed.
func (p *ConfigPrint) Diff(after *ConfigPrint) ConfigDiff {
	type key struct{ service, name string }
	index := func(cp *ConfigPrint) map[key]ConfigItem {
		m := map[key]ConfigItem{}
		if cp != nil {
			for _, it := range cp.Items {
				m[key{it.Service, it.Name}] = it
			}
		}
		return m
	}
	before, now := index(p), index(after)
	d := ConfigDiff{}
	for k, b := range before {
		a, ok := now[k]
		if !ok {
			d = append(d, ConfigChange{Service: k.service, Item: k.name, Change: ConfigRemoved})
			continue
		}
		if attrs := configAttrDiff(b.Attrs, a.Attrs); len(attrs) > 0 {
			d = append(d, ConfigChange{Service: k.service, Item: k.name, Change: ConfigChanged, Attrs: attrs})
		}
	}
	for k := range now {
		if _, ok := before[k]; !ok {
			d = append(d, ConfigChange{Service: k.service, Item: k.name, Change: ConfigAdded})
		}
	}
	slices.SortFunc(d, func(x, y ConfigChange) int {
		return cmp.Or(strings.Compare(x.Service, y.Service), strings.Compare(x.Item, y.Item))
	})
	return d
}

// configAttrDiff lists the attributes that differ, in the order the item
// after the change has them, then those it lost.
func configAttrDiff(before, after []ConfigAttr) []ConfigAttrChange {
	old := map[string]string{}
	for _, a := range before {
		old[a.Name] = a.Value
	}
	var out []ConfigAttrChange
	seen := map[string]bool{}
	for _, a := range after {
		seen[a.Name] = true
		b, ok := old[a.Name]
		if !ok {
			b = ConfigNone
		}
		if b != a.Value {
			out = append(out, ConfigAttrChange{Name: a.Name, Before: b, After: a.Value})
		}
	}
	for _, b := range before {
		if !seen[b.Name] {
			out = append(out, ConfigAttrChange{Name: b.Name, Before: b.Value, After: ConfigNone})
		}
	}
	return out
}

// String is the change on one line: "billing: /etc/billing/billing.conf:
// sha256 changed, mode 0640 -> 0644", "db: role tmp added".
func (c ConfigChange) String() string {
	head := configQuote(c.Service) + ": " + configQuote(c.Item)
	if c.Change != ConfigChanged {
		return head + " " + c.Change
	}
	parts := make([]string, 0, len(c.Attrs))
	for _, a := range c.Attrs {
		parts = append(parts, a.String())
	}
	return head + ": " + strings.Join(parts, ", ")
}

// String is "mode 0640 -> 0644", or "sha256 changed" for a checksum or a
// value too long to show.
func (a ConfigAttrChange) String() string {
	name := configQuote(a.Name)
	if a.Name == "sha256" || len(a.Before) > configShownMax || len(a.After) > configShownMax {
		return name + " changed"
	}
	return name + " " + configShow(a.Before) + " -> " + configShow(a.After)
}

// Lines is the diff as one line per changed item.
func (d ConfigDiff) Lines() []string {
	out := make([]string, len(d))
	for i, c := range d {
		out[i] = c.String()
	}
	return out
}

// String is the diff, one line per changed item; "" when nothing changed.
func (d ConfigDiff) String() string { return strings.Join(d.Lines(), "\n") }

// configShow is a value as a diff line shows it: quoted when it is empty
// or would not read as one value.
func configShow(v string) string {
	if v == "" || strings.TrimSpace(v) != v {
		return strconv.Quote(v)
	}
	return configQuote(v)
}

// configQuote quotes what a service chose (a file name, a list element)
// when it holds a control character or is not UTF-8: a diff line stays one
// line, and nothing in it can pass for another.
func configQuote(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
