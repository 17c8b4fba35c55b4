package dataset

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// withInPlace loads in the order before restore order: one transaction,
// constraints and indexes in place.
func withInPlace() Option { return func(o *options) error { o.inPlace = true; return nil } }

// withInline generates rows in the COPY's own goroutine.
func withInline() Option { return func(o *options) error { o.inline = true; return nil } }

// withTrace hears each phase's duration.
func withTrace(fn func(string, time.Duration)) Option {
	return func(o *options) error { o.trace = fn; return nil }
}

// WithInPlaceForTest is withInPlace for this package's external tests.
var WithInPlaceForTest = withInPlace

// A generated row that breaks a constraint fails the load with one error
// naming the dataset, the table, the constraint and the row's key, in
// either order; restore order then leaves the tables empty with every
// constraint back.
func TestLoadViolation(t *testing.T) {
	e := startDB(t)
	ctx := context.Background()
	tests := []struct {
		dataset    string
		table      string
		constraint string
		key        *regexp.Regexp
		empty      []string
	}{
		{"violation-unique", "vio_codes", "vio_codes_code_key",
			regexp.MustCompile(`Key \(code\)=\(a\) (is duplicated|already exists)`), []string{"vio_codes"}},
		{"violation-fk", "vio_child", "vio_child_small_fk",
			regexp.MustCompile(`Key \(small_id\)=\(([3-9]|[1-4][0-9]|50)\) is not present in table "vio_small"`), []string{"vio_small", "vio_big", "vio_child"}},
	}
	for _, tc := range tests {
		for _, order := range []string{"restore", "in place"} {
			t.Run(tc.dataset+"/"+order, func(t *testing.T) {
				s, err := Find(filepath.Join("testdata", tc.dataset))
				if err != nil {
					t.Fatal(err)
				}
				var opts []Option
				if order == "in place" {
					opts = append(opts, withInPlace())
				}
				_, err = Load(ctx, e, s, 10, opts...)
				var v *ViolationError
				if !errors.As(err, &v) {
					t.Fatalf("got %v, want a ViolationError", err)
				}
				msg := err.Error()
				for _, want := range []string{"dataset " + s.Name + ":", "table " + tc.table + ":", tc.constraint} {
					if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(msg) {
						t.Errorf("%q does not name %q", msg, want)
					}
				}
				if !tc.key.MatchString(msg) {
					t.Errorf("%q does not name the row's key (%s)", msg, tc.key)
				}
				// A row the COPY itself refuses is named by its line too.
				if order == "in place" && tc.dataset == "violation-unique" && !strings.Contains(msg, "COPY vio_codes, line 4") {
					t.Errorf("%q does not name the COPY's line", msg)
				}
				if v.Table != tc.table || v.Constraint != tc.constraint {
					t.Errorf("table %q, constraint %q; want %q, %q", v.Table, v.Constraint, tc.table, tc.constraint)
				}
				for _, table := range tc.empty {
					if n := count(t, e, "SELECT count(*) FROM "+table); n != 0 {
						t.Errorf("%s has %d rows after the failed load", table, n)
					}
				}
				if n := count(t, e, "SELECT count(*) FROM pg_constraint WHERE convalidated AND conname = '"+tc.constraint+"'"); n != 1 {
					t.Errorf("constraint %s is not back after the failed load", tc.constraint)
				}
				if n := count(t, e, "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = '"+tc.table+"'::regclass"); n != 1 {
					t.Errorf("%s's primary key is not back after the failed load", tc.table)
				}
			})
		}
	}
}

// A foreign key that was NOT VALID, or NOT ENFORCED (PostgreSQL 18, which
// cannot be validated), goes back as it was; any other is validated.
func TestForeignKeyAddedAsIs(t *testing.T) {
	for def, want := range map[string]bool{
		"FOREIGN KEY (a) REFERENCES public.t(id)":                        false,
		"FOREIGN KEY (a) REFERENCES public.t(id) NOT VALID":              true,
		"FOREIGN KEY (a) REFERENCES public.t(id) NOT ENFORCED":           true,
		"FOREIGN KEY (a) REFERENCES public.t(id) ON DELETE CASCADE":      false,
		"FOREIGN KEY (\"NOT VALID\") REFERENCES public.t(\"NOT VALID\")": false,
	} {
		if got := (definition{kind: 'f', def: def}).addedAsIs(); got != want {
			t.Errorf("addedAsIs(%q) = %v, want %v", def, got, want)
		}
	}
}
