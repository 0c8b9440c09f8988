package migrations

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadLayouts(t *testing.T) {
	for _, tc := range []struct {
		name, path, content string
		ok                  bool
		tool                Tool
		version             string
		tx                  Transaction
		// sql is the SQL kept, with blanked lines shown as "".
		sql string
	}{
		{"plain", "x/001_init.sql", "CREATE TABLE t (id int);\n", true, Plain, "", NoTransaction, "CREATE TABLE t (id int);\n"},
		{"golang-migrate up", "db/20240101_init.up.sql", "CREATE TABLE t (id int);", true, GolangMigrate, "20240101", QueryTransaction, "CREATE TABLE t (id int);"},
		{"golang-migrate down", "db/20240101_init.down.sql", "DROP TABLE t;", false, "", "", 0, ""},
		{"flyway versioned", "sql/V1.2.10__add_index.sql", "SELECT 1;", true, Flyway, "1.2.10", UnlessNonTransactional, "SELECT 1;"},
		{"flyway underscore version", "sql/V2_1__x.sql", "SELECT 1;", true, Flyway, "2_1", UnlessNonTransactional, "SELECT 1;"},
		{"flyway repeatable", "sql/R__views.sql", "SELECT 1;", true, Flyway, "", UnlessNonTransactional, "SELECT 1;"},
		{"flyway undo", "sql/U3__undo.sql", "DROP TABLE t;", false, "", "", 0, ""},
		{"not flyway", "sql/Vendors.sql", "SELECT 1;", true, Plain, "", NoTransaction, "SELECT 1;"},
		{"goose", "g/00002_x.sql",
			"-- header\n-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
			true, Goose, "00002", FileTransaction,
			"         \n-- +goose Up\nCREATE TABLE t (id int);\n" + spaces("-- +goose Down") + "\n" + spaces("DROP TABLE t;") + "\n"},
		{"goose, no transaction, lower case", "g/3_x.sql",
			"-- +goose no transaction\n-- +goose up\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- +goose down\nDROP INDEX i;",
			true, Goose, "3", NoTransaction,
			spaces("-- +goose no transaction") + "\n-- +goose up\nCREATE INDEX CONCURRENTLY i ON t (a);\n" + spaces("-- +goose down") + "\n" + spaces("DROP INDEX i;")},
		{"goose statement block", "g/4_fn.sql",
			"-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\n",
			true, Goose, "4", FileTransaction,
			"-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\n"},
		{"dbmate", "d/20240102_x.sql",
			"-- migrate:up\nALTER TABLE t ADD COLUMN a int;\n\n-- migrate:down\nALTER TABLE t DROP COLUMN a;\n",
			true, Dbmate, "20240102", FileTransaction,
			"-- migrate:up\nALTER TABLE t ADD COLUMN a int;\n\n" + spaces("-- migrate:down") + "\n" + spaces("ALTER TABLE t DROP COLUMN a;") + "\n"},
		{"dbmate without transaction", "d/20240103_x.sql",
			"-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\n",
			true, Dbmate, "20240103", NoTransaction,
			"-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n" + spaces("-- migrate:down") + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok, err := Read(tc.path, tc.content)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if f.Tool != tc.tool || f.Version != tc.version || f.Transaction != tc.tx {
				t.Errorf("tool %s version %q transaction %d, want %s %q %d", f.Tool, f.Version, f.Transaction, tc.tool, tc.version, tc.tx)
			}
			if f.SQL != tc.sql {
				t.Errorf("SQL\n%q\nwant\n%q", f.SQL, tc.sql)
			}
			if len(f.SQL) != len(tc.content) || strings.Count(f.SQL, "\n") != strings.Count(tc.content, "\n") {
				t.Error("offsets moved")
			}
			if (f.Transaction == NoTransaction) != (f.TxNote == "") {
				t.Errorf("transaction %d with note %q", f.Transaction, f.TxNote)
			}
		})
	}
}

// spaces is a blanked line.
func spaces(line string) string { return strings.Repeat(" ", len(line)) }

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ name, path, content, want string }{
		{"unterminated block", "g/1_x.sql", "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n", "g/1_x.sql:2: -- +goose StatementBegin has no -- +goose StatementEnd"},
		{"block into down", "g/1_x.sql", "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n-- +goose Down\n", "g/1_x.sql:2: -- +goose StatementBegin has no -- +goose StatementEnd before -- +goose Down"},
		{"nested block", "g/1_x.sql", "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n", "g/1_x.sql:3: -- +goose StatementBegin inside the one on line 2"},
		{"end without begin", "g/1_x.sql", "-- +goose Up\n-- +goose StatementEnd\n", "g/1_x.sql:2: -- +goose StatementEnd without a StatementBegin"},
		{"dbmate option", "d/1_x.sql", "\n-- migrate:up transaction:maybe\n", "d/1_x.sql:2: dbmate option transaction:maybe: want true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Read(tc.path, tc.content)
			var me *Error
			if !errors.As(err, &me) || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Load finds the files of directories, skips hidden ones and down files,
// reads each path once, and sorts versions as numbers.
func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("m/10_ten.up.sql", "SELECT 10;")
	write("m/9_nine.up.sql", "SELECT 9;")
	write("m/9_nine.down.sql", "SELECT -9;")
	write("m/V1.10__x.sql", "SELECT 1.10;")
	write("m/V1.9__x.sql", "SELECT 1.9;")
	write("m/R__b.sql", "SELECT 'rb';")
	write("m/R__a.sql", "SELECT 'ra';")
	write("m/zz_plain.sql", "SELECT 'z';")
	write("m/aa_plain.sql", "SELECT 'a';")
	write("m/sub/00011_goose.sql", "-- +goose Up\nSELECT 11;")
	write("m/.hidden/1_x.up.sql", "SELECT 'hidden';")
	write("m/notes.txt", "not SQL")
	extra := write("extra.sql", "SELECT 'extra';")

	files, err := Load([]string{filepath.Join(dir, "m"), extra, filepath.Join(dir, "m", "9_nine.up.sql")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f.Path)
		names = append(names, filepath.ToSlash(rel))
	}
	want := []string{
		"m/V1.9__x.sql", "m/V1.10__x.sql", "m/9_nine.up.sql", "m/10_ten.up.sql", "m/sub/00011_goose.sql",
		"extra.sql", "m/aa_plain.sql", "m/zz_plain.sql",
		"m/R__a.sql", "m/R__b.sql",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("order\n%v\nwant\n%v", names, want)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load([]string{filepath.Join(t.TempDir(), "nope")})
	if err == nil || !strings.Contains(err.Error(), "nope: no such file or directory") {
		t.Errorf("error %v", err)
	}
}
