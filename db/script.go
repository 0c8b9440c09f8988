package db

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// ExecScript runs a SQL script such as pg_dump's plain output on conn, the
// way `psql -v ON_ERROR_STOP=1 -f` would: SQL text is sent with the simple
// query protocol (so SET and set_config lines apply to the rest of the
// script), and each "COPY ... FROM stdin;" is fed the data lines that follow
// it, up to the "\." line. pg_dump's \restrict and \unrestrict lines are
// skipped; any other psql meta-command is an error. It stops at the first error, naming the line the
// failing batch or COPY starts at.
func ExecScript(ctx context.Context, conn *pgx.Conn, script string) error {
	var (
		batch     strings.Builder
		batchLine = 1
		lineNo    = 0
	)
	flush := func() error {
		sql := batch.String()
		batch.Reset()
		if strings.TrimSpace(sql) == "" {
			return nil
		}
		if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
			return fmt.Errorf("script batch starting at line %d: %w", batchLine, err)
		}
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(script))
	sc.Buffer(make([]byte, 1024*1024), 256*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		lineNo++
		if batch.Len() == 0 {
			batchLine = lineNo
		}
		if strings.HasPrefix(line, `\`) && outsideQuotes(batch.String()) {
			// A psql meta-command. pg_dump (15.14 and later) brackets
			// its output in \restrict / \unrestrict, which only guard
			// psql itself; nothing else can be honoured here.
			cmd, _, _ := strings.Cut(line, " ")
			if cmd != `\restrict` && cmd != `\unrestrict` {
				return fmt.Errorf("script line %d: psql meta-command %s is not supported", lineNo, cmd)
			}
			continue
		}
		if strings.HasPrefix(line, "COPY ") && isCopyFromStdin(line) && outsideQuotes(batch.String()) {
			if err := flush(); err != nil {
				return err
			}
			copyLine := lineNo
			var data strings.Builder
			terminated := false
			for sc.Scan() {
				lineNo++
				if sc.Text() == `\.` {
					terminated = true
					break
				}
				data.WriteString(sc.Text())
				data.WriteByte('\n')
			}
			if !terminated {
				return fmt.Errorf(`script line %d: COPY data not terminated by a "\." line`, copyLine)
			}
			if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(data.String()), line); err != nil {
				return fmt.Errorf("script line %d: %s: %w", copyLine, line, err)
			}
			batchLine = lineNo + 1
			continue
		}
		batch.WriteString(line)
		batch.WriteByte('\n')
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("reading script: %w", err)
	}
	return flush()
}

// isCopyFromStdin reports whether line is one complete COPY ... FROM STDIN
// statement.
func isCopyFromStdin(line string) bool {
	tree, err := pg_query.Parse(line)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	cp := tree.Stmts[0].Stmt.GetCopyStmt()
	return cp != nil && cp.IsFrom && !cp.IsProgram && cp.Filename == ""
}

// outsideQuotes reports whether sql ends outside any string, dollar-quoted
// body or comment, so that a following line is SQL at the top level.
func outsideQuotes(sql string) bool {
	_, err := pg_query.SplitWithScanner(sql, true)
	return err == nil
}
