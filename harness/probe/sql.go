package probe

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SQLChecker runs a query on PostgreSQL; it passes when the query returns
// without an error. The query may come from an untrusted compose file, so
// it runs as one statement (the extended protocol: no "; DELETE ..." after
// it) in a read-only transaction that is rolled back, and a probe cannot
// change the data that fingerprints and assertions compare. It keeps a few connections open between checks, as a
// dependent service's pool would; one a timeout broke is replaced.
type SQLChecker struct {
	query  string
	pool   *pgxpool.Pool
	writes bool // SQLWriter: the query's writes commit
}

// sqlConns is the most connections a checker holds: enough for the checks
// that overlap when one hangs (timeout/interval+1 at the defaults).
const sqlConns = 4

// SQL returns a checker that runs query on the database at dsn (a
// PostgreSQL URL or keyword/value string). It connects on the first check.
func SQL(dsn, query string) (*SQLChecker, error) {
	if query == "" {
		return nil, fmt.Errorf("sql probe: no query")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("sql probe %q: %w", query, err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.MaxConns = sqlConns
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("sql probe %q: %w", query, err)
	}
	return &SQLChecker{query: query, pool: pool}, nil
}

// SQLWriter is SQL for a query of the harness's own that writes, such as
// a probe of a dependent service's writes to a table a migration locks: it
// runs as one statement in a transaction that commits. Never use it for a
// query from a compose file or a feature.
func SQLWriter(dsn, query string) (*SQLChecker, error) {
	c, err := SQL(dsn, query)
	if c != nil {
		c.writes = true
	}
	return c, err
}

// String describes the check.
func (c *SQLChecker) String() string { return "sql " + c.query }

// Check runs the query once, reading and discarding its result.
func (c *SQLChecker) Check(ctx context.Context) error {
	if c.writes {
		if _, err := c.pool.Exec(ctx, c.query); err != nil {
			return fmt.Errorf("sql %q: %w", c.query, err)
		}
		return nil
	}
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("sql %q: %w", c.query, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, c.query); err != nil {
		return fmt.Errorf("sql %q: %w", c.query, err)
	}
	return nil
}

// Close closes the connections.
func (c *SQLChecker) Close() error {
	c.pool.Close()
	return nil
}
