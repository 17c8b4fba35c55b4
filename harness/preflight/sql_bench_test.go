package preflight

import (
	"fmt"
	"testing"
	"time"
)

// sqlMigrationTemplates is a realistic mix of migration files (%[1]d is the
// migration's number): new tables, additive changes, index builds,
// constraints in two steps, backfills, renames and drops, with and
// without the guards the rules ask for.
var sqlMigrationTemplates = []string{
	`-- new table
CREATE TABLE orders_%[1]d (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total_cents bigint NOT NULL DEFAULT 0,
    note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_%[1]d_customer_idx ON orders_%[1]d (customer_id);
COMMENT ON TABLE orders_%[1]d IS 'orders, migration %[1]d';
`,
	`SET lock_timeout = '2s';
SELECT pg_advisory_lock(%[1]d);
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS c%[1]d text;
ALTER TABLE invoices ALTER COLUMN c%[1]d SET DEFAULT 'n/a';
SELECT pg_advisory_unlock(%[1]d);
`,
	`BEGIN;
ALTER TABLE invoices ADD COLUMN token_%[1]d uuid DEFAULT gen_random_uuid();
UPDATE invoices SET status = 'open' WHERE status IS NULL AND id < %[1]d;
COMMIT;
`,
	`CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_%[1]d_idx ON invoices (customer_id, created_at) WHERE deleted_at IS NULL;
`,
	`SET lock_timeout = '1s';
ALTER TABLE line_items ADD CONSTRAINT line_items_%[1]d_fk FOREIGN KEY (invoice_id) REFERENCES invoices (id) NOT VALID;
ALTER TABLE line_items VALIDATE CONSTRAINT line_items_%[1]d_fk;
ALTER TABLE line_items ADD CONSTRAINT line_items_%[1]d_positive CHECK (amount_cents >= 0) NOT VALID;
ALTER TABLE line_items VALIDATE CONSTRAINT line_items_%[1]d_positive;
`,
	`-- backfill in batches (%[1]d)
DO $$
DECLARE lo bigint := 0;
BEGIN
  WHILE lo < 1000000 LOOP
    UPDATE invoices SET total_cents = amount_cents WHERE id >= lo AND id < lo + 1000 AND total_cents IS NULL;
    COMMIT;
    lo := lo + 1000;
  END LOOP;
END $$;
`,
	`BEGIN;
LOCK TABLE customers IN ACCESS EXCLUSIVE MODE;
ALTER TABLE customers RENAME COLUMN name_%[1]d TO display_name_%[1]d;
ALTER TABLE customers DROP COLUMN IF EXISTS legacy_%[1]d;
ALTER TABLE customers ALTER COLUMN code TYPE varchar(64);
ALTER TABLE customers ALTER COLUMN email SET NOT NULL;
COMMIT;
`,
	`INSERT INTO settings (key, value) VALUES ('feature_%[1]d', 'on') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
CREATE OR REPLACE FUNCTION touch_%[1]d() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER touch_%[1]d BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION touch_%[1]d();
CREATE VIEW open_invoices_%[1]d AS SELECT id, customer_id, total_cents FROM invoices WHERE status = 'open';
GRANT SELECT ON open_invoices_%[1]d TO reporting;
`,
}

// generateSQLMigrations returns n migration files from the templates.
func generateSQLMigrations(n int) [][]byte {
	files := make([][]byte, n)
	for i := range files {
		files[i] = []byte(fmt.Sprintf(sqlMigrationTemplates[i%len(sqlMigrationTemplates)], i))
	}
	return files
}

// BenchmarkCheckSQL checks a generated set of 500 migrations per
// iteration and reports the time per file and per 500 files (issue 10's
// 2 s target is for 500 migrations and 200 scripts together).
func BenchmarkCheckSQL(b *testing.B) {
	files := generateSQLMigrations(500)
	for i, f := range files[:len(sqlMigrationTemplates)] {
		for _, x := range CheckSQL("m.sql", f) {
			if x.Rule == RuleParseError {
				b.Fatalf("template %d does not parse: %s", i, x.Message)
			}
		}
	}
	findings := 0
	start := time.Now()
	for b.Loop() {
		findings = 0
		for i, f := range files {
			findings += len(CheckSQL(fmt.Sprintf("migrations/%03d.sql", i), f))
		}
	}
	per := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(per*1e3/float64(len(files)), "ms/file")
	b.ReportMetric(per, "s/500-files")
	b.ReportMetric(float64(findings), "findings")
}
