package snapshot

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// hostileTable is a table name that closes a hand-quoted literal when the
// database has standard_conforming_strings off, and runs a statement.
const hostileTable = `x\'; CREATE TABLE public.pwned(); --`

// TestDataHostileDatabase: a database that turns standard_conforming_strings
// off and names a table to break out of a literal runs nothing through a
// print or a diff, and its table is printed and diffed like any other; a
// table in a schema named like the private ones is printed; a user view on
// a private key table is not dropped with it: Forget and ForgetData fail
// and say so, and the view stays.
func TestDataHostileDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the bundled world")
	}
	e := startBilling(t, 10)
	ctx := context.Background()
	tbl := pgx.Identifier{"public", hostileTable}.Sanitize()
	lookalike := dataKeySchemaPrefix(e) + "deadbeef"
	execSQL(t, e, `
CREATE TABLE `+tbl+` (id int PRIMARY KEY, "it's \' col" text);
INSERT INTO `+tbl+` VALUES (1, 'a\'), (2, 'b''');
CREATE SCHEMA `+pgx.Identifier{lookalike}.Sanitize()+`;
CREATE TABLE `+pgx.Identifier{lookalike, "hidden"}.Sanitize()+` (id int PRIMARY KEY);
INSERT INTO `+pgx.Identifier{lookalike, "hidden"}.Sanitize()+` VALUES (1);
CREATE SCHEMA `+pgx.Identifier{dataKeySchemaPrefix(e) + "x"}.Sanitize()+`;
CREATE TABLE `+pgx.Identifier{dataKeySchemaPrefix(e) + "x", "hidden2"}.Sanitize()+` (v text);
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET standard_conforming_strings = off', current_database()); END $$;`)
	if queryInt(t, e, `SELECT (current_setting('standard_conforming_strings') = 'off')::int`) != 1 {
		t.Fatal("the database's sessions do not have standard_conforming_strings off")
	}
	pwned := func(when string) {
		t.Helper()
		if n := queryInt(t, e, `SELECT count(*) FROM pg_class WHERE relname = 'pwned'`); n != 0 {
			t.Fatalf("%s: the table name ran a statement: %d tables pwned", when, n)
		}
	}

	p, err := Data(ctx, e, "db")
	pwned("after Data")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var hostile *DataTable
	for i, tb := range p.Tables {
		names = append(names, dataName(tb.Schema, tb.Name))
		if tb.Schema == "public" && tb.Name == hostileTable {
			hostile = &p.Tables[i]
		}
	}
	if hostile == nil || hostile.Rows != 2 || !slices.Equal(hostile.Key, []string{"id"}) || hostile.KeyTable == "" {
		t.Fatalf("the hostile table printed as %+v", hostile)
	}
	for _, want := range []string{lookalike + ".hidden", dataKeySchemaPrefix(e) + "x.hidden2"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s, a user table in a schema named like the private ones, is not in the print: %v", want, names)
		}
	}
	for _, n := range names {
		if strings.HasPrefix(n, p.KeySchema) {
			t.Errorf("the print fingerprinted its own key table %s", n)
		}
	}

	execSQL(t, e, `UPDATE `+tbl+` SET "it's \' col" = 'c' WHERE id = 2`)
	d, err := DiffData(ctx, e, "db", p)
	pwned("after DiffData")
	if err != nil {
		t.Fatal(err)
	}
	if want := hostileTable + ": rows: 1 changed (id=2)\n"; d.String() != want {
		t.Errorf("diff:\n%s\nwant:\n%s", d, want)
	}

	// A user view on a private key table.
	view := pgx.Identifier{"public", "peek"}.Sanitize()
	execSQL(t, e, `CREATE VIEW `+view+` AS SELECT * FROM `+pgx.Identifier{p.KeySchema, hostile.KeyTable}.Sanitize())
	viewThere := func(when string) {
		t.Helper()
		if queryInt(t, e, `SELECT count(*) FROM pg_class WHERE relname = 'peek'`) != 1 {
			t.Errorf("%s: the user's view was dropped", when)
		}
	}
	err = p.Forget(ctx)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "peek") {
		t.Errorf("Forget with a user view on a key table: %v", err)
	}
	viewThere("after Forget")
	err = ForgetData(ctx, e, "db", "")
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "peek") {
		t.Errorf("ForgetData with a user view on a key table: %v", err)
	}
	viewThere("after ForgetData")

	execSQL(t, e, `DROP VIEW `+view)
	keySchema := p.KeySchema
	if err := p.Forget(ctx); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, e, `SELECT count(*) FROM pg_namespace WHERE nspname = '`+keySchema+`'`); n != 0 {
		t.Errorf("the private schema %s is left after Forget", keySchema)
	}
	// The database's own tables in schemas named like the private ones
	// stay; ForgetData says it left one.
	err = ForgetData(ctx, e, "db", "")
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), lookalike) {
		t.Errorf("ForgetData with a user table in %s: %v", lookalike, err)
	}
	if n := queryInt(t, e, `SELECT count(*) FROM pg_class WHERE relname IN ('hidden', 'hidden2')`); n != 2 {
		t.Errorf("%d of the 2 user tables in schemas named like the private ones are left", n)
	}
	pwned("at the end")
}
