package schema_test

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/schema"
)

// typeSpellings maps type spellings to what format_type prints for them.
var typeSpellings = []struct{ in, want string }{
	{"integer", "integer"}, {"int", "integer"}, {"int4", "integer"}, {"pg_catalog.int4", "integer"},
	{"smallint", "smallint"}, {"int2", "smallint"}, {"bigint", "bigint"}, {"int8", "bigint"},
	{"boolean", "boolean"}, {"bool", "boolean"}, {"text", "text"}, {"pg_catalog.text", "text"},
	{"varchar(45)", "character varying(45)"}, {"character varying(45)", "character varying(45)"},
	{"character varying", "character varying"}, {"varchar", "character varying"},
	{"char", "character(1)"}, {"character", "character(1)"}, {"char(1)", "character(1)"},
	{"character(10)", "character(10)"}, {"bpchar", "bpchar"}, {`"char"`, `"char"`},
	{"numeric(4,2)", "numeric(4,2)"}, {"numeric(4)", "numeric(4,0)"}, {"numeric", "numeric"},
	{"decimal(10,3)", "numeric(10,3)"}, {"decimal", "numeric"},
	{"timestamp with time zone", "timestamp with time zone"}, {"timestamptz", "timestamp with time zone"},
	{"timestamptz(3)", "timestamp(3) with time zone"}, {"timestamp(3) without time zone", "timestamp(3) without time zone"},
	{"timestamp", "timestamp without time zone"}, {"time", "time without time zone"},
	{"time(2)", "time(2) without time zone"}, {"timetz", "time with time zone"},
	{"time(4) with time zone", "time(4) with time zone"},
	{"date", "date"}, {"bytea", "bytea"}, {"tsvector", "tsvector"},
	{"text[]", "text[]"}, {"int[][]", "integer[]"}, {"varchar(10)[]", "character varying(10)[]"},
	{"timestamptz[]", "timestamp with time zone[]"}, {"numeric(4,2)[]", "numeric(4,2)[]"},
	{"public.mpaa_rating", "public.mpaa_rating"}, {"mpaa_rating", "public.mpaa_rating"},
	{"public.year", "public.year"}, {"year", "public.year"},
	{`public."bıgınt"`, `public."bıgınt"`}, {`"bıgınt"`, `public."bıgınt"`},
	{"double precision", "double precision"}, {"float8", "double precision"}, {"float", "double precision"},
	{"float(10)", "real"}, {"float(30)", "double precision"}, {"real", "real"}, {"float4", "real"},
	{"json", "json"}, {"jsonb", "jsonb"}, {"jsonpath", "jsonpath"}, {"uuid", "uuid"},
	{"interval", "interval"}, {"interval(3)", "interval(3)"}, {"interval year to month", "interval year to month"},
	{"interval day to second(2)", "interval day to second(2)"}, {"interval hour", "interval hour"},
	{"interval minute to second", "interval minute to second"},
	{"inet", "inet"}, {"cidr", "cidr"}, {"macaddr", "macaddr"}, {"money", "money"}, {"xml", "xml"},
	{"oid", "oid"}, {"name", "name"}, {"regclass", "regclass"}, {"pg_lsn", "pg_lsn"},
	{"bit", "bit(1)"}, {"bit(8)", "bit(8)"}, {"bit varying(5)", "bit varying(5)"}, {"varbit", "bit varying"},
	{"bit varying", "bit varying"}, {"point", "point"}, {"int4range", "int4range"}, {"tstzrange", "tstzrange"},
}

func TestFormatType(t *testing.T) {
	for _, ts := range typeSpellings {
		got, err := schema.CanonicalType(ts.in)
		if err != nil || got != ts.want {
			t.Errorf("CanonicalType(%q) = %q, %v; want %q", ts.in, got, err, ts.want)
		}
	}
	if _, err := schema.CanonicalType("int; DROP TABLE x"); err == nil {
		t.Error("CanonicalType accepted more than a type")
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"actor": "actor", "Order Items": `"Order Items"`, "user": `"user"`, "year": "year", "bıgınt": `"bıgınt"`,
		"a1": "a1", "1a": `"1a"`, "_x": "_x", `say "hi"`: `"say ""hi"""`, "select": `"select"`, "Upper": `"Upper"`,
		"": `""`, "name": "name", "text": "text", "int": `"int"`,
	} {
		if got := schema.QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

// The live side feeds pg_get_* output through these functions; each case
// pairs such output with the canonical form ParseDump gives for pagila.
func TestCanonicalFunctions(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(string) (string, error)
		in   string
		want string
	}{
		{"default", schema.CanonicalExpr, "nextval('public.customer_customer_id_seq'::regclass)", "nextval('public.customer_customer_id_seq'::regclass)"},
		{"default parens", schema.CanonicalExpr, "((1 + 2))", "1 + 2"},
		{"enum default", schema.CanonicalExpr, "'G'::public.mpaa_rating", "'G'::public.mpaa_rating"},
		{"sql value function", schema.CanonicalExpr, "CURRENT_DATE", "current_date"},
		{"check", schema.CanonicalConstraint, "CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))", "CHECK (value >= 1901 AND value <= 2155)"},
		{"primary key", schema.CanonicalConstraint, "PRIMARY KEY (actor_id)", "PRIMARY KEY (actor_id)"},
		{"foreign key", schema.CanonicalConstraint,
			"FOREIGN KEY (address_id) REFERENCES public.address(address_id) ON UPDATE CASCADE ON DELETE RESTRICT",
			"FOREIGN KEY (address_id) REFERENCES public.address (address_id) ON UPDATE CASCADE ON DELETE RESTRICT"},
		{"not valid dropped", schema.CanonicalConstraint, "FOREIGN KEY (a) REFERENCES public.t(id) NOT VALID", "FOREIGN KEY (a) REFERENCES public.t (id)"},
		{"check not valid dropped", schema.CanonicalConstraint, "CHECK ((x > 0)) NOT VALID", "CHECK (x > 0)"},
		{"index", schema.CanonicalStatement, "CREATE UNIQUE INDEX actor_pkey ON public.actor USING btree (actor_id)",
			"CREATE UNIQUE INDEX actor_pkey ON public.actor USING btree (actor_id)"},
		{"partial index", schema.CanonicalStatement, "CREATE INDEX i ON public.t USING btree (a) WHERE (a > 0)",
			"CREATE INDEX i ON public.t USING btree (a) WHERE a > 0"},
		{"trigger", schema.CanonicalStatement,
			"CREATE TRIGGER last_updated BEFORE UPDATE ON public.actor FOR EACH ROW EXECUTE FUNCTION public.last_updated()",
			"CREATE TRIGGER last_updated BEFORE UPDATE ON public.actor FOR EACH ROW EXECUTE FUNCTION public.last_updated()"},
		{"view", schema.CanonicalQuery, " SELECT a.actor_id,\n    a.first_name\n   FROM public.actor a\n  WHERE (a.actor_id > 5);",
			"SELECT a.actor_id, a.first_name FROM public.actor a WHERE a.actor_id > 5"},
		{"partition key", schema.CanonicalPartitionKey, "RANGE (payment_date)", "RANGE (payment_date)"},
		{"partition key list", schema.CanonicalPartitionKey, "LIST (kind)", "LIST (kind)"},
		{"type", schema.CanonicalType, "varchar(45)", "character varying(45)"},
	} {
		got, err := tc.f(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q -> %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		f    func(string) (string, error)
		in   string
	}{
		{"two expressions", schema.CanonicalExpr, "1, 2"},
		{"expression with FROM", schema.CanonicalExpr, "1 FROM t"},
		{"aliased expression", schema.CanonicalExpr, "1 AS x"},
		{"not an expression", schema.CanonicalExpr, "1)"},
		{"two statements", schema.CanonicalStatement, "SELECT 1; SELECT 2"},
		{"not a query", schema.CanonicalQuery, "DELETE FROM t"},
		{"not a constraint", schema.CanonicalConstraint, "x"},
		{"constraint and more", schema.CanonicalConstraint, "CHECK (x > 0), ADD COLUMN y int"},
		{"not a partition key", schema.CanonicalPartitionKey, "RANGE"},
	} {
		if got, err := tc.f(tc.in); err == nil {
			t.Errorf("%s: %q accepted as %q", tc.name, tc.in, got)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %v", tc.name, err)
		}
	}
}
