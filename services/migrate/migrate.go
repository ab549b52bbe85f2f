// Package migrate applies a service's versioned schema migrations at start.
//
// Versions are applied in order, each once, and recorded in
// schema_migrations. MariaDB commits DDL implicitly, so a migration's
// statements must be safe to run again (CREATE TABLE IF NOT EXISTS, ADD
// COLUMN IF NOT EXISTS): a crash between a statement and its record re-runs
// it at the next start. A named lock serialises two processes migrating the
// same database.
package migrate

import (
	"context"
	"fmt"
	"sort"

	"gorm.io/gorm"
)

// Migration is one schema version.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

const table = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT NOT NULL PRIMARY KEY,
  name VARCHAR(128) NOT NULL,
  applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`

// Apply runs every migration of ms not yet recorded in db.
func Apply(ctx context.Context, db *gorm.DB, ms []Migration) error {
	sorted := append([]Migration(nil), ms...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Version < sorted[j].Version })
	for i, m := range sorted {
		if m.Version <= 0 || (i > 0 && sorted[i-1].Version == m.Version) {
			return fmt.Errorf("migrate: version %d of %q is not positive and unique", m.Version, m.Name)
		}
	}
	conn, err := db.DB()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	c, err := conn.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer c.Close()
	var got int
	if err := c.QueryRowContext(ctx, "SELECT GET_LOCK('schema_migrations', 60)").Scan(&got); err != nil || got != 1 {
		return fmt.Errorf("migrate: take lock: got %d: %v", got, err)
	}
	defer c.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('schema_migrations')") //nolint:errcheck
	if _, err := c.ExecContext(ctx, table); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	done := map[int]bool{}
	rows, err := c.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	for _, m := range sorted {
		if done[m.Version] {
			continue
		}
		for _, s := range m.Statements {
			if _, err := c.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("migrate: version %d %q: %w", m.Version, m.Name, err)
			}
		}
		if _, err := c.ExecContext(ctx, "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", m.Version, m.Name); err != nil {
			return fmt.Errorf("migrate: record version %d: %w", m.Version, err)
		}
	}
	return nil
}
