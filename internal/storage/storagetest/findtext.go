package storagetest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TextHit is a column holding one of the searched strings.
type TextHit struct {
	Table  string
	Column string
	Needle string
	Rows   int
}

func (h TextHit) String() string {
	return fmt.Sprintf("%s.%s: %d row(s) contain %q", h.Table, h.Column, h.Rows, h.Needle)
}

// FindText searches every column of every table in the database's own
// schemas for each needle (case-insensitively) and returns where it was
// found. The tables and columns come from information_schema, so a table
// added by a later migration is searched without anyone listing it.
// Columns of any type are searched through their text form (json, jsonb and
// arrays included); bytea columns are searched for the needle's bytes.
func FindText(ctx context.Context, pool *pgxpool.Pool, needles ...string) ([]TextHit, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.table_schema, c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE t.table_type = 'BASE TABLE'
		  AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
		  AND c.table_schema NOT LIKE 'pg_toast%'
		ORDER BY c.table_schema, c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("listing columns: %w", err)
	}
	type column struct{ schema, table, name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.schema, &c.table, &c.name, &c.typ)
	})
	if err != nil {
		return nil, fmt.Errorf("listing columns: %w", err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no columns found: is the database migrated?")
	}
	var hits []TextHit
	for _, c := range cols {
		ref := pgx.Identifier{c.schema, c.table}.Sanitize()
		col := pgx.Identifier{c.name}.Sanitize()
		cond := `strpos(lower(` + col + `::text), lower($1)) > 0`
		if c.typ == "bytea" {
			cond = `position(convert_to($1, 'UTF8') IN ` + col + `) > 0`
		}
		for _, n := range needles {
			if n == "" {
				return nil, fmt.Errorf("empty needle")
			}
			var count int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+ref+` WHERE `+cond, n).Scan(&count); err != nil {
				return nil, fmt.Errorf("searching %s.%s: %w", c.table, c.name, err)
			}
			if count > 0 {
				hits = append(hits, TextHit{Table: c.table, Column: c.name, Needle: n, Rows: count})
			}
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Table < hits[j].Table })
	return hits, nil
}

// Tables lists the tables that hold hits.
func Tables(hits []TextHit) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hits {
		if !seen[h.Table] {
			seen[h.Table] = true
			out = append(out, h.Table)
		}
	}
	sort.Strings(out)
	return out
}

// DescribeHits renders hits one per line, for failure messages.
func DescribeHits(hits []TextHit) string {
	lines := make([]string, len(hits))
	for i, h := range hits {
		lines[i] = h.String()
	}
	return strings.Join(lines, "\n")
}
