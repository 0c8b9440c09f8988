package schema

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func loadPagila(t *testing.T) *Schema {
	t.Helper()
	b, err := os.ReadFile("../testdata/pagila/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseDump("testdata/pagila/schema.sql", string(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustParse(t *testing.T, sql string) *Schema {
	t.Helper()
	s, err := ParseDump("test.sql", sql)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustTable(t *testing.T, s *Schema, name string) *Table {
	t.Helper()
	tab := s.Table("public", name)
	if tab == nil {
		t.Fatalf("no table public.%s", name)
	}
	return tab
}

func viewKeys(vs []*View) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Key())
	}
	return out
}

func TestPagilaTables(t *testing.T) {
	s := loadPagila(t)
	// schema.sql has 22 CREATE TABLE statements: 14 ordinary tables, the
	// partitioned payment and its 7 monthly partitions (p2022_01..07).
	if len(s.Tables) != 22 {
		t.Fatalf("got %d tables, want 22", len(s.Tables))
	}
	for _, k := range []string{"public.actor", "public.address", "public.category", "public.city",
		"public.country", "public.customer", "public.film", "public.film_actor", "public.film_category",
		"public.inventory", "public.language", "public.payment", "public.rental", "public.staff", "public.store"} {
		if s.Tables[k] == nil {
			t.Errorf("missing table %s", k)
		}
	}
	for _, tab := range s.Tables {
		if tab.RowEstimate != -1 || tab.Bytes != -1 {
			t.Errorf("%s: RowEstimate %d, Bytes %d; a dump knows neither (-1)", tab.Key(), tab.RowEstimate, tab.Bytes)
		}
	}
	if s.ServerVersion != 0 || s.Source != "testdata/pagila/schema.sql" {
		t.Errorf("ServerVersion %d, Source %q", s.ServerVersion, s.Source)
	}
	if len(s.Views) != 8 {
		t.Errorf("got %d views, want 7 views and 1 materialized view", len(s.Views))
	}
}

func TestPagilaCustomerColumns(t *testing.T) {
	s := loadPagila(t)
	want := []Column{
		{Name: "customer_id", Type: "integer", NotNull: true, Default: "nextval('public.customer_customer_id_seq'::regclass)"},
		{Name: "store_id", Type: "integer", NotNull: true},
		{Name: "first_name", Type: "text", NotNull: true},
		{Name: "last_name", Type: "text", NotNull: true},
		{Name: "email", Type: "text"},
		{Name: "address_id", Type: "integer", NotNull: true},
		{Name: "activebool", Type: "boolean", NotNull: true, Default: "true"},
		{Name: "create_date", Type: "date", NotNull: true, Default: "current_date"},
		{Name: "last_update", Type: "timestamp with time zone", Default: "now()"},
		{Name: "active", Type: "integer"},
	}
	tab := mustTable(t, s, "customer")
	var got []Column
	for _, c := range tab.Columns {
		got = append(got, *c)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("customer columns:\n got %+v\nwant %+v", got, want)
	}
	if bk := tab.BatchKey(); !reflect.DeepEqual(bk, []string{"customer_id"}) {
		t.Errorf("customer BatchKey = %v", bk)
	}
	if bk := mustTable(t, s, "film_actor").BatchKey(); !reflect.DeepEqual(bk, []string{"actor_id", "film_id"}) {
		t.Errorf("film_actor BatchKey = %v", bk)
	}
}

func TestPagilaFilmTypes(t *testing.T) {
	s := loadPagila(t)
	film := mustTable(t, s, "film")
	for _, tc := range []struct{ col, typ, def string }{
		{"rental_rate", "numeric(4,2)", "4.99"},
		{"replacement_cost", "numeric(5,2)", "19.99"},
		{"rental_duration", "smallint", "3"},
		{"release_year", "public.year", ""},
		{"rating", "public.mpaa_rating", "'G'::public.mpaa_rating"},
		{"special_features", "text[]", ""},
		{"fulltext", "tsvector", ""},
	} {
		c := film.Column(tc.col)
		if c == nil {
			t.Errorf("film.%s missing", tc.col)
			continue
		}
		if c.Type != tc.typ || c.Default != tc.def {
			t.Errorf("film.%s: type %q default %q, want %q %q", tc.col, c.Type, c.Default, tc.typ, tc.def)
		}
	}
	if !film.Column("rental_rate").NotNull {
		t.Error("film.rental_rate should be NOT NULL")
	}
	if got := mustTable(t, s, "language").Column("name").Type; got != "character(20)" {
		t.Errorf("language.name type %q", got)
	}
	if got := mustTable(t, s, "staff").Column("picture").Type; got != "bytea" {
		t.Errorf("staff.picture type %q", got)
	}
}

func TestPagilaPartitions(t *testing.T) {
	s := loadPagila(t)
	pay := mustTable(t, s, "payment")
	if !pay.Partitioned || pay.PartitionKey != "RANGE (payment_date)" || pay.PartitionOf != "" {
		t.Errorf("payment: partitioned %v key %q of %q", pay.Partitioned, pay.PartitionKey, pay.PartitionOf)
	}
	want := []string{"public.payment_p2022_01", "public.payment_p2022_02", "public.payment_p2022_03",
		"public.payment_p2022_04", "public.payment_p2022_05", "public.payment_p2022_06", "public.payment_p2022_07"}
	if !reflect.DeepEqual(pay.Partitions, want) {
		t.Errorf("payment partitions %v", pay.Partitions)
	}
	for _, k := range want {
		p := s.Tables[k]
		if p.PartitionOf != "public.payment" || p.Partitioned {
			t.Errorf("%s: partition of %q, partitioned %v", k, p.PartitionOf, p.Partitioned)
		}
		// The partition's copy of payment_pkey belongs to the parent.
		if p.PrimaryKey() != nil {
			t.Errorf("%s lists the primary key it inherits", k)
		}
	}
	pk := pay.PrimaryKey()
	if pk == nil || pk.Name != "payment_pkey" || !reflect.DeepEqual(pk.Columns, []string{"payment_date", "payment_id"}) {
		t.Fatalf("payment primary key %+v", pk)
	}
	ix := pay.Index("payment_pkey")
	if ix == nil || !ix.Primary || !ix.Unique || ix.Constraint != "payment_pkey" ||
		ix.Definition != "CREATE UNIQUE INDEX payment_pkey ON ONLY public.payment USING btree (payment_date, payment_id)" {
		t.Errorf("payment_pkey index %+v", ix)
	}
}

func TestPagilaKeys(t *testing.T) {
	s := loadPagila(t)
	rental := mustTable(t, s, "rental")
	pk := rental.PrimaryKey()
	if pk == nil || pk.Name != "rental_pkey" || pk.Definition != "PRIMARY KEY (rental_id)" || !pk.Valid {
		t.Fatalf("rental primary key %+v", pk)
	}
	ix := rental.Index("rental_pkey")
	if ix == nil || ix.Definition != "CREATE UNIQUE INDEX rental_pkey ON public.rental USING btree (rental_id)" ||
		!ix.Primary || ix.Constraint != "rental_pkey" || !ix.Valid {
		t.Errorf("rental_pkey index %+v", ix)
	}
	actor := mustTable(t, s, "actor").Index("actor_pkey")
	if actor == nil || actor.Definition != "CREATE UNIQUE INDEX actor_pkey ON public.actor USING btree (actor_id)" {
		t.Errorf("actor_pkey index %+v", actor)
	}
	uq := rental.Index("idx_unq_rental_rental_date_inventory_id_customer_id")
	if uq == nil || !uq.Unique || uq.Primary || uq.Constraint != "" ||
		!reflect.DeepEqual(uq.Columns, []string{"rental_date", "inventory_id", "customer_id"}) {
		t.Errorf("rental unique index %+v", uq)
	}

	// Only payment_p2022_01..06 declare a foreign key to rental; p2022_07
	// has none in this dump.
	var got []string
	for _, r := range s.ReferencingForeignKeys("public.rental") {
		got = append(got, r.Table.Name+"."+r.Constraint.Name)
		if !reflect.DeepEqual(r.Constraint.Columns, []string{"rental_id"}) || !reflect.DeepEqual(r.Constraint.RefColumns, []string{"rental_id"}) {
			t.Errorf("%s columns %v -> %v", r.Constraint.Name, r.Constraint.Columns, r.Constraint.RefColumns)
		}
	}
	want := []string{
		"payment_p2022_01.payment_p2022_01_rental_id_fkey", "payment_p2022_02.payment_p2022_02_rental_id_fkey",
		"payment_p2022_03.payment_p2022_03_rental_id_fkey", "payment_p2022_04.payment_p2022_04_rental_id_fkey",
		"payment_p2022_05.payment_p2022_05_rental_id_fkey", "payment_p2022_06.payment_p2022_06_rental_id_fkey",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("foreign keys to rental:\n got %v\nwant %v", got, want)
	}
	fk := mustTable(t, s, "address").Constraint("address_city_id_fkey")
	if fk == nil || fk.Type != ForeignKey || fk.RefTable != "public.city" ||
		fk.Definition != "FOREIGN KEY (city_id) REFERENCES public.city (city_id) ON UPDATE CASCADE ON DELETE RESTRICT" {
		t.Errorf("address_city_id_fkey %+v", fk)
	}
}

func TestPagilaViews(t *testing.T) {
	s := loadPagila(t)
	uses := func(view, rel, col string) bool {
		for _, u := range s.Views["public."+view].Uses {
			if u == (ColumnRef{Relation: "public." + rel, Column: col}) {
				return true
			}
		}
		return false
	}
	for _, v := range []string{"film_list", "nicer_but_slower_film_list"} {
		if !uses(v, "film", "rental_rate") {
			t.Errorf("%s should use film.rental_rate", v)
		}
		// Join conditions count: film_actor.actor_id is only in an ON.
		if !uses(v, "film_actor", "actor_id") || !uses(v, "category", "category_id") {
			t.Errorf("%s should use the join columns", v)
		}
	}
	if !uses("customer_list", "customer", "activebool") || !uses("customer_list", "customer", "store_id") {
		t.Error("customer_list should use customer.activebool and customer.store_id")
	}
	if uses("customer_list", "customer", "email") {
		t.Error("customer_list does not read customer.email")
	}
	// Correlated subquery in actor_info's target list: f.title through the
	// alias f, and c.category_id from the outer query.
	if !uses("actor_info", "film", "title") || !uses("actor_info", "category", "category_id") {
		t.Error("actor_info should use film.title and category.category_id")
	}
	// GROUP BY s.store_id is the only use of store.store_id... besides the join.
	if !uses("sales_by_store", "store", "store_id") || !uses("sales_by_store", "store", "manager_staff_id") {
		t.Error("sales_by_store should use store.store_id and store.manager_staff_id")
	}

	if got := viewKeys(s.ViewsUsingColumn("public.film", "rental_rate")); !reflect.DeepEqual(got, []string{"public.film_list", "public.nicer_but_slower_film_list"}) {
		t.Errorf("views using film.rental_rate: %v", got)
	}
	if got := viewKeys(s.ViewsUsingColumn("public.customer", "activebool")); !reflect.DeepEqual(got, []string{"public.customer_list"}) {
		t.Errorf("views using customer.activebool: %v", got)
	}
	if got := viewKeys(s.ViewsUsingColumn("public.customer", "email")); len(got) != 0 {
		t.Errorf("views using customer.email: %v", got)
	}

	mv := s.Views["public.rental_by_category"]
	if mv == nil || !mv.Materialized {
		t.Fatalf("rental_by_category: %+v", mv)
	}
	if len(mv.Indexes) != 1 || mv.Indexes[0].Definition != "CREATE UNIQUE INDEX rental_category ON public.rental_by_category USING btree (category)" {
		t.Errorf("rental_by_category indexes %+v", mv.Indexes)
	}
	wantDeps := []string{"public.category", "public.film", "public.film_category", "public.inventory", "public.payment", "public.rental"}
	if !reflect.DeepEqual(mv.DependsOn, wantDeps) {
		t.Errorf("rental_by_category depends on %v", mv.DependsOn)
	}
	if !strings.HasPrefix(mv.Definition, "SELECT c.name AS category, sum(p.amount) AS total_sales FROM public.payment p JOIN public.rental r ON p.rental_id = r.rental_id") {
		t.Errorf("rental_by_category definition %q", mv.Definition)
	}
	if s.Views["public.film_list"].Materialized {
		t.Error("film_list is not materialized")
	}
}

func TestPagilaTriggers(t *testing.T) {
	s := loadPagila(t)
	n := 0
	for _, tab := range s.Tables {
		for _, tr := range tab.Triggers {
			if tr.Name != "last_updated" {
				continue
			}
			n++
			if tr.Timing != "BEFORE" || !reflect.DeepEqual(tr.Events, []string{"UPDATE"}) || tr.Function != "public.last_updated" {
				t.Errorf("%s.last_updated: %+v", tab.Name, tr)
			}
			want := "CREATE TRIGGER last_updated BEFORE UPDATE ON public." + tab.Name + " FOR EACH ROW EXECUTE FUNCTION public.last_updated()"
			if tr.Definition != want {
				t.Errorf("definition %q, want %q", tr.Definition, want)
			}
		}
	}
	if n != 14 {
		t.Errorf("got %d last_updated triggers, want 14", n)
	}
	film := mustTable(t, s, "film")
	if got := film.TriggersOn("UPDATE"); !reflect.DeepEqual(got, []string{"film_fulltext_trigger", "last_updated"}) {
		t.Errorf("film UPDATE triggers %v", got)
	}
	if got := film.TriggersOn("INSERT"); !reflect.DeepEqual(got, []string{"film_fulltext_trigger"}) {
		t.Errorf("film INSERT triggers %v", got)
	}
	for _, tr := range film.Triggers {
		if tr.Name == "film_fulltext_trigger" && tr.Function != "tsvector_update_trigger" {
			t.Errorf("film_fulltext_trigger function %q", tr.Function)
		}
	}
	if got := mustTable(t, s, "payment").TriggersOn("UPDATE"); len(got) != 0 {
		t.Errorf("payment has no triggers, got %v", got)
	}
}

func TestPagilaTypesAndSequences(t *testing.T) {
	s := loadPagila(t)
	e := s.Enums["public.mpaa_rating"]
	if e == nil || !reflect.DeepEqual(e.Values, []string{"G", "PG", "PG-13", "R", "NC-17"}) {
		t.Errorf("mpaa_rating %+v", e)
	}
	y := s.Domains["public.year"]
	if y == nil || y.Type != "integer" || y.NotNull || !reflect.DeepEqual(y.Checks, []string{"CHECK (value >= 1901 AND value <= 2155)"}) {
		t.Errorf("year domain %+v", y)
	}
	if d := s.Domains["public.bıgınt"]; d == nil || d.Type != "bigint" {
		t.Errorf("bıgınt domain %+v", d)
	}
	// 13 sequences; this dump never says OWNED BY (the defaults name them).
	if len(s.Sequences) != 13 {
		t.Errorf("got %d sequences, want 13", len(s.Sequences))
	}
	seq := s.Sequences["public.customer_customer_id_seq"]
	if seq == nil || seq.OwnedBy != nil {
		t.Errorf("customer_customer_id_seq %+v", seq)
	}
}

func TestViewsUsingColumnOrder(t *testing.T) {
	s := mustParse(t, `
CREATE TABLE t (id int PRIMARY KEY, a text, b text);
CREATE VIEW v1 AS SELECT id, a FROM t;
CREATE VIEW v2 AS SELECT v1.a FROM v1 WHERE v1.id > 0;
CREATE VIEW v3 AS SELECT upper(x.b) AS b FROM t AS x;
CREATE VIEW v0 AS SELECT * FROM v2;
`)
	if got := viewKeys(s.ViewsUsingColumn("public.t", "a")); !reflect.DeepEqual(got, []string{"public.v0", "public.v2", "public.v1"}) {
		t.Errorf("views using t.a, dependents first: %v", got)
	}
	if got := viewKeys(s.ViewsUsingColumn("public.t", "b")); !reflect.DeepEqual(got, []string{"public.v3"}) {
		t.Errorf("views using t.b: %v", got)
	}
	wantUses := []ColumnRef{{"public.v1", "a"}, {"public.v1", "id"}}
	if got := s.Views["public.v2"].Uses; !reflect.DeepEqual(got, wantUses) {
		t.Errorf("v2 uses %v", got)
	}
	if got := s.Views["public.v0"].Uses; !reflect.DeepEqual(got, []ColumnRef{{"public.v2", "a"}}) {
		t.Errorf("v0 uses %v", got)
	}
	if got := s.Views["public.v1"].DependsOn; !reflect.DeepEqual(got, []string{"public.t"}) {
		t.Errorf("v1 depends on %v", got)
	}
}

func TestViewUsesResolution(t *testing.T) {
	s := mustParse(t, `
CREATE TABLE a (id int PRIMARY KEY, x int, note text);
CREATE TABLE b (id int PRIMARY KEY, a_id int, y int, note text);
CREATE VIEW v AS
  WITH recent AS (SELECT a_id, max(y) AS top FROM b GROUP BY a_id)
  SELECT a.x, r.top, s.n
  FROM a
  JOIN recent r ON r.a_id = a.id
  LEFT JOIN (SELECT count(*) AS n, note FROM b GROUP BY note) s ON s.note = a.note
  WHERE EXISTS (SELECT 1 FROM b b2 WHERE b2.a_id = a.id AND y > x);
CREATE VIEW u AS SELECT id, note FROM a JOIN b USING (id, note);
`)
	want := []ColumnRef{
		{"public.a", "id"}, {"public.a", "note"}, {"public.a", "x"},
		{"public.b", "a_id"}, {"public.b", "note"}, {"public.b", "y"},
	}
	if got := s.Views["public.v"].Uses; !reflect.DeepEqual(got, want) {
		t.Errorf("v uses\n got %v\nwant %v", got, want)
	}
	if got := s.Views["public.v"].DependsOn; !reflect.DeepEqual(got, []string{"public.a", "public.b"}) {
		t.Errorf("v depends on %v", got)
	}
	wantU := []ColumnRef{{"public.a", "id"}, {"public.a", "note"}, {"public.b", "id"}, {"public.b", "note"}}
	if got := s.Views["public.u"].Uses; !reflect.DeepEqual(got, wantU) {
		t.Errorf("u uses %v", got)
	}
}

func TestQuotedIdentifiersAndImplicitNames(t *testing.T) {
	s := mustParse(t, `
CREATE TABLE orders (id bigint PRIMARY KEY);
CREATE TABLE "Order Items" (
    id serial PRIMARY KEY,
    "Unit Price" numeric(10,2) NOT NULL CHECK ("Unit Price" >= 0),
    "user" text UNIQUE,
    order_id bigint REFERENCES orders ON DELETE CASCADE,
    qty integer CONSTRAINT qty_positive CHECK (qty > 0),
    CHECK (qty < 1000 AND "Unit Price" < 100000),
    UNIQUE (order_id, "user")
);
CREATE INDEX ON "Order Items" ("Unit Price" DESC);
`)
	oi := s.Table("public", "Order Items")
	if oi == nil {
		t.Fatal(`no table public."Order Items"`)
	}
	var names []string
	for _, c := range oi.Constraints {
		names = append(names, c.Name+": "+c.Definition)
	}
	// The names PostgreSQL gives them, sorted by name (catalog order).
	want := []string{
		`Order Items_Unit Price_check: CHECK ("Unit Price" >= 0)`,
		`Order Items_check: CHECK (qty < 1000 AND "Unit Price" < 100000)`,
		"Order Items_order_id_fkey: FOREIGN KEY (order_id) REFERENCES public.orders (id) ON DELETE CASCADE",
		`Order Items_order_id_user_key: UNIQUE (order_id, "user")`,
		"Order Items_pkey: PRIMARY KEY (id)",
		`Order Items_user_key: UNIQUE ("user")`,
		"qty_positive: CHECK (qty > 0)",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("constraints:\n got %q\nwant %q", names, want)
	}
	fk := oi.Constraint("Order Items_order_id_fkey")
	if fk.RefTable != "public.orders" || !reflect.DeepEqual(fk.RefColumns, []string{"id"}) {
		t.Errorf("fk %+v", fk)
	}
	if c := oi.Constraint("Order Items_check"); !reflect.DeepEqual(c.Columns, []string{"qty", "Unit Price"}) {
		t.Errorf("table check columns %v", c.Columns)
	}
	id := oi.Column("id")
	if id.Type != "integer" || !id.NotNull || id.Default != `nextval('public."Order Items_id_seq"'::regclass)` {
		t.Errorf("serial id %+v", id)
	}
	seq := s.Sequences["public.Order Items_id_seq"]
	if seq == nil || seq.OwnedBy == nil || *seq.OwnedBy != (ColumnRef{"public.Order Items", "id"}) {
		t.Errorf("serial sequence %+v", seq)
	}
	if c := oi.Column("Unit Price"); c.Type != "numeric(10,2)" || !c.NotNull {
		t.Errorf("Unit Price %+v", c)
	}
	if c := oi.Column("user"); c == nil || c.Type != "text" {
		t.Errorf("user column %+v", c)
	}
	ix := oi.Index("Order Items_user_key")
	if ix == nil || ix.Definition != `CREATE UNIQUE INDEX "Order Items_user_key" ON public."Order Items" USING btree ("user")` || ix.Constraint != "Order Items_user_key" {
		t.Errorf("user_key index %+v", ix)
	}
	ix = oi.Index("Order Items_Unit Price_idx")
	if ix == nil || ix.Definition != `CREATE INDEX "Order Items_Unit Price_idx" ON public."Order Items" USING btree ("Unit Price" DESC)` {
		t.Errorf("unnamed index %+v", oi.Indexes)
	}
	if bk := oi.BatchKey(); !reflect.DeepEqual(bk, []string{"id"}) {
		t.Errorf("BatchKey %v", bk)
	}
}

func TestImplicitNameTruncation(t *testing.T) {
	long := strings.Repeat("a", 60)
	s := mustParse(t, "CREATE TABLE "+long+" (id int PRIMARY KEY, "+long+"b int UNIQUE);")
	tab := s.Table("public", long)
	// makeObjectName: 63 bytes at most, the longer name shortened first.
	if pk := tab.PrimaryKey(); pk.Name != strings.Repeat("a", 58)+"_pkey" {
		t.Errorf("pkey name %q", pk.Name)
	}
	if uq := tab.Constraints[0]; uq.Type != Unique || uq.Name != strings.Repeat("a", 29)+"_"+strings.Repeat("a", 29)+"_key" {
		t.Errorf("unique name %q (%d bytes)", uq.Name, len(uq.Name))
	}
}

func TestDumpStatements(t *testing.T) {
	s := mustParse(t, `
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;
COMMENT ON EXTENSION pgcrypto IS 'crypto';
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TYPE public.mood AS ENUM ('sad', 'happy');
ALTER TYPE public.mood ADD VALUE 'ok' BEFORE 'happy';
CREATE TABLE public.events (
    id bigint NOT NULL,
    kind public.mood,
    at timestamp(3) without time zone,
    body jsonb,
    total integer GENERATED ALWAYS AS ((id * 2)) STORED,
    tags character varying(20)[]
)
PARTITION BY LIST (kind);
CREATE TABLE public.events_sad PARTITION OF public.events FOR VALUES IN ('sad');
CREATE TABLE public.items (
    id integer NOT NULL,
    event_id bigint,
    code text
);
ALTER TABLE public.items OWNER TO app;
ALTER TABLE public.items ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.items_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1
);
CREATE SEQUENCE public.codes_seq;
ALTER SEQUENCE public.codes_seq OWNED BY public.items.code;
ALTER TABLE ONLY public.items ALTER COLUMN code SET DEFAULT ('c'::text || nextval('public.codes_seq'::regclass));
ALTER TABLE ONLY public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, kind);
ALTER TABLE ONLY public.events_sad ADD CONSTRAINT events_sad_pkey PRIMARY KEY (id, kind);
ALTER INDEX public.events_pkey ATTACH PARTITION public.events_sad_pkey;
ALTER TABLE ONLY public.items ADD CONSTRAINT items_pkey PRIMARY KEY (id);
ALTER TABLE public.items ADD CONSTRAINT items_code_check CHECK ((length(code) > 1)) NOT VALID;
ALTER TABLE public.items ADD CONSTRAINT items_event_fkey FOREIGN KEY (event_id) REFERENCES public.items(id) NOT VALID;
ALTER TABLE public.items VALIDATE CONSTRAINT items_event_fkey;
CREATE UNIQUE INDEX items_code_idx ON public.items USING btree (lower(code)) WHERE (code IS NOT NULL);
CREATE TRIGGER items_touch BEFORE INSERT OR DELETE ON public.items FOR EACH ROW EXECUTE FUNCTION public.touch();
GRANT SELECT ON public.items TO reader;
`)
	if e := s.Enums["public.mood"]; !reflect.DeepEqual(e.Values, []string{"sad", "ok", "happy"}) {
		t.Errorf("mood values %v", e.Values)
	}
	ev := mustTable(t, s, "events")
	if !ev.Partitioned || ev.PartitionKey != "LIST (kind)" || !reflect.DeepEqual(ev.Partitions, []string{"public.events_sad"}) {
		t.Errorf("events partitioning %v %q %v", ev.Partitioned, ev.PartitionKey, ev.Partitions)
	}
	for _, tc := range []struct{ col, typ, gen string }{
		{"kind", "public.mood", ""}, {"at", "timestamp(3) without time zone", ""}, {"body", "jsonb", ""},
		{"total", "integer", "id * 2"}, {"tags", "character varying(20)[]", ""},
	} {
		if c := ev.Column(tc.col); c.Type != tc.typ || c.Generated != tc.gen {
			t.Errorf("events.%s %+v", tc.col, c)
		}
	}
	sad := mustTable(t, s, "events_sad")
	if sad.PartitionOf != "public.events" || len(sad.Columns) != 6 || sad.Column("total").Generated != "id * 2" {
		t.Errorf("events_sad %+v", sad)
	}
	if len(sad.Constraints) != 0 || len(sad.Indexes) != 0 {
		t.Errorf("events_sad keeps its attached partition key: %+v %+v", sad.Constraints, sad.Indexes)
	}
	if ix := ev.Index("events_pkey"); ix == nil || ix.Definition != "CREATE UNIQUE INDEX events_pkey ON ONLY public.events USING btree (id, kind)" {
		t.Errorf("events_pkey %+v", ix)
	}

	items := mustTable(t, s, "items")
	id := items.Column("id")
	if id.Identity != "by default" || !id.NotNull || id.Default != "" {
		t.Errorf("identity column %+v", id)
	}
	if seq := s.Sequences["public.items_id_seq"]; seq == nil || *seq.OwnedBy != (ColumnRef{"public.items", "id"}) {
		t.Errorf("identity sequence %+v", seq)
	}
	if seq := s.Sequences["public.codes_seq"]; seq == nil || seq.OwnedBy == nil || *seq.OwnedBy != (ColumnRef{"public.items", "code"}) {
		t.Errorf("codes_seq %+v", seq)
	}
	if c := items.Column("code"); c.Default != "'c'::text || nextval('public.codes_seq'::regclass)" {
		t.Errorf("code default %q", c.Default)
	}
	ck := items.Constraint("items_code_check")
	if ck == nil || ck.Valid || ck.Definition != "CHECK (length(code) > 1)" || !reflect.DeepEqual(ck.Columns, []string{"code"}) {
		t.Errorf("NOT VALID check %+v", ck)
	}
	fk := items.Constraint("items_event_fkey")
	if fk == nil || !fk.Valid || fk.Definition != "FOREIGN KEY (event_id) REFERENCES public.items (id)" {
		t.Errorf("validated fk %+v", fk)
	}
	ix := items.Index("items_code_idx")
	if ix == nil || !ix.Unique || !reflect.DeepEqual(ix.Columns, []string{""}) ||
		ix.Definition != "CREATE UNIQUE INDEX items_code_idx ON public.items USING btree (lower(code)) WHERE code IS NOT NULL" {
		t.Errorf("expression index %+v", ix)
	}
	tr := items.Triggers[0]
	if tr.Timing != "BEFORE" || !reflect.DeepEqual(tr.Events, []string{"INSERT", "DELETE"}) || tr.Function != "public.touch" {
		t.Errorf("trigger %+v", tr)
	}
	// A partial unique index is no batch key; the primary key is.
	if bk := items.BatchKey(); !reflect.DeepEqual(bk, []string{"id"}) {
		t.Errorf("BatchKey %v", bk)
	}
}

func TestHandWrittenResolution(t *testing.T) {
	s := mustParse(t, `
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TABLE parent (id int, label varchar(10), PRIMARY KEY (id));
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
ALTER TABLE child ADD COLUMN note text DEFAULT 'x' NOT NULL;
ALTER TABLE child ALTER COLUMN note DROP NOT NULL;
CREATE INDEX child_parent ON child (parent_id ASC NULLS LAST);
CREATE TRIGGER child_stamp AFTER UPDATE ON child FOR EACH ROW EXECUTE FUNCTION stamp();
`)
	child := mustTable(t, s, "child")
	if c := child.Column("note"); c.Default != "'x'" || c.NotNull {
		t.Errorf("note %+v", c)
	}
	fk := child.Constraint("child_parent_id_fkey")
	if fk == nil || fk.Definition != "FOREIGN KEY (parent_id) REFERENCES public.parent (id) DEFERRABLE INITIALLY DEFERRED" {
		t.Errorf("fk %+v", fk)
	}
	// pg_get_indexdef drops default orderings and names the access method.
	if ix := child.Index("child_parent"); ix.Definition != "CREATE INDEX child_parent ON public.child USING btree (parent_id)" {
		t.Errorf("index %q", ix.Definition)
	}
	tr := child.Triggers[0]
	if tr.Function != "public.stamp" || tr.Definition != "CREATE TRIGGER child_stamp AFTER UPDATE ON public.child FOR EACH ROW EXECUTE FUNCTION public.stamp()" {
		t.Errorf("trigger %+v", tr)
	}
	if c := mustTable(t, s, "parent").Column("id"); !c.NotNull {
		t.Error("a primary key column is NOT NULL")
	}
}

func TestPsqlMetaCommands(t *testing.T) {
	s := mustParse(t, "\\restrict abc123\nSET x = 1;\n\\connect app\nCREATE TABLE a (x int);\n\n\\unrestrict abc123\n")
	if s.Table("public", "a") == nil {
		t.Error("table a missing")
	}
	// A backslash line inside a statement is not a meta-command.
	s = mustParse(t, "CREATE TABLE a (x int);\nCREATE VIEW v AS SELECT 'a\n\\b' AS s;\n")
	if v := s.Views["public.v"]; v == nil || v.Definition != "SELECT E'a\n\\\\b' AS s" {
		t.Errorf("view with a backslash line in a string: %+v", v)
	}
	s = mustParse(t, "\\restrict k\nCREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\n\\x\n$$;\nCREATE TABLE a (x int DEFAULT 1);\n\\unrestrict k\n")
	if c := s.Table("public", "a").Column("x"); c.Default != "1" {
		t.Errorf("column after a function body with a backslash line: %+v", c)
	}
	// Positions after a blanked line stay right.
	_, err := ParseDump("m.sql", "\\restrict k\nCREATE TABLE a (x int,,);\n")
	if err == nil || err.Error() != `m.sql:2:23: syntax error at or near ","` {
		t.Errorf("got %v", err)
	}
}

func TestDumpErrors(t *testing.T) {
	for _, tc := range []struct{ name, sql, want string }{
		{"syntax", "CREATE TABLE a (x int);\nCREATE TABLE b (\n  y int,,\n  z int\n);\n",
			"bad.sql:3:9: syntax error at or near \",\""},
		{"syntax after multibyte", "CREATE TABLE \"café\" (x int);\n-- ééé\nCREATE TABLE \"ü\" (ü int, ü2 int) x;\n",
			"bad.sql:3:34: syntax error at or near \"x\""},
		{"end of input", "CREATE TABLE a (x int", "bad.sql:1:22: syntax error at end of input"},
		{"unknown table", "CREATE TABLE a (x int);\n\nALTER TABLE ONLY b ADD CONSTRAINT b_pkey PRIMARY KEY (x);\n",
			"bad.sql:3:1: ALTER TABLE public.b: no such table in the dump"},
		{"unknown column", "CREATE TABLE a (x int);\nALTER TABLE a ALTER COLUMN y SET DEFAULT 1;",
			"bad.sql:2:1: ALTER TABLE public.a: no column y"},
		{"index on unknown table", "CREATE INDEX i ON nowhere (x);", "bad.sql:1:1: CREATE INDEX i: no table public.nowhere in the dump"},
		{"fk without primary key", "CREATE TABLE a (x int);\nCREATE TABLE b (y int REFERENCES a);",
			"bad.sql: foreign key b_y_fkey on public.b: public.a has no primary key to reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDump("bad.sql", tc.sql)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got error %v\nwant        %s", err, tc.want)
			}
		})
	}
}

func TestCleanDumpAndReplacements(t *testing.T) {
	s := mustParse(t, `
ALTER TABLE ONLY public.b DROP CONSTRAINT b_a_fkey;
ALTER TABLE ONLY public.a DROP CONSTRAINT a_pkey;
DROP VIEW public.v;
DROP TABLE public.b;
DROP TABLE public.a;
CREATE TABLE public.a (id integer NOT NULL, gone text, name text);
CREATE TABLE IF NOT EXISTS public.a (other integer);
CREATE TABLE public.b (id integer NOT NULL, a_id integer);
CREATE UNIQUE INDEX a_id_idx ON public.a USING btree (id);
ALTER TABLE public.a ADD CONSTRAINT a_pkey PRIMARY KEY USING INDEX a_id_idx;
ALTER TABLE public.a DROP COLUMN gone;
ALTER TABLE ONLY public.b ADD CONSTRAINT b_a_fkey FOREIGN KEY (a_id) REFERENCES public.a(id);
ALTER TABLE ONLY public.b DROP CONSTRAINT b_a_fkey;
CREATE VIEW public.v AS SELECT a.id FROM public.a;
CREATE OR REPLACE VIEW public.v AS SELECT a.id, a.name FROM public.a;
CREATE INDEX b_a_id ON public.b (a_id);
DROP INDEX public.b_a_id;
`)
	a := mustTable(t, s, "a")
	if len(a.Columns) != 2 || a.Column("gone") != nil {
		t.Errorf("a columns %+v", a.Columns)
	}
	pk := a.PrimaryKey()
	if pk == nil || pk.Name != "a_pkey" || pk.Definition != "PRIMARY KEY (id)" || len(a.Indexes) != 1 ||
		a.Indexes[0].Name != "a_pkey" || a.Indexes[0].Definition != "CREATE UNIQUE INDEX a_pkey ON public.a USING btree (id)" {
		t.Errorf("a primary key %+v, indexes %+v", pk, a.Indexes)
	}
	b := mustTable(t, s, "b")
	if len(b.Constraints) != 0 || len(b.Indexes) != 0 {
		t.Errorf("b keeps dropped objects: %+v %+v", b.Constraints, b.Indexes)
	}
	if got := s.Views["public.v"].Uses; !reflect.DeepEqual(got, []ColumnRef{{"public.a", "id"}, {"public.a", "name"}}) {
		t.Errorf("replaced view uses %v", got)
	}
}

func TestMatviewIndexesPartitionChecksAndOrder(t *testing.T) {
	s := mustParse(t, `
CREATE TABLE public.ev (id integer NOT NULL, kind text NOT NULL, CONSTRAINT kind_known CHECK ((kind <> ''::text)))
PARTITION BY LIST (kind);
CREATE TABLE public.ev_a (id integer NOT NULL, kind text NOT NULL, CONSTRAINT kind_known CHECK ((kind <> ''::text)), CONSTRAINT own CHECK ((id > 0)));
ALTER TABLE ONLY public.ev ATTACH PARTITION public.ev_a FOR VALUES IN ('a');
CREATE MATERIALIZED VIEW public.mv AS SELECT ev.kind, count(*) AS n FROM public.ev GROUP BY ev.kind WITH NO DATA;
CREATE UNIQUE INDEX mv_kind ON public.mv USING btree (kind);
CREATE INDEX mv_n ON public.mv (n);
CREATE INDEX zz ON public.ev_a (id);
CREATE INDEX aa ON public.ev_a (kind);
CREATE TABLE cutover.state (id integer);
CREATE SEQUENCE cutover.state_seq;
`)
	a := mustTable(t, s, "ev_a")
	if len(a.Constraints) != 1 || a.Constraints[0].Name != "own" {
		t.Errorf("partition keeps its parent's CHECK: %+v", a.Constraints)
	}
	if c := mustTable(t, s, "ev").Constraint("kind_known"); c == nil || c.Definition != "CHECK (kind <> ''::text)" {
		t.Errorf("parent CHECK %+v", c)
	}
	if a.Indexes[0].Name != "aa" || a.Indexes[1].Name != "zz" {
		t.Errorf("indexes not in name order: %s, %s", a.Indexes[0].Name, a.Indexes[1].Name)
	}
	mv := s.Views["public.mv"]
	if len(mv.Indexes) != 2 || mv.Indexes[0].Name != "mv_kind" || !mv.Indexes[0].Unique ||
		mv.Indexes[0].Definition != "CREATE UNIQUE INDEX mv_kind ON public.mv USING btree (kind)" ||
		mv.Indexes[1].Definition != "CREATE INDEX mv_n ON public.mv USING btree (n)" {
		t.Errorf("materialized view indexes %+v", mv.Indexes)
	}
	if s.Tables["cutover.state"] != nil || s.Sequences["cutover.state_seq"] != nil {
		t.Error("objects of schema cutover are cutover's own state, not the application's")
	}
}

// FuzzParseDump: no input makes ParseDump panic, and (verifyFastPaths is
// on in tests) no input makes the fast deparse paths disagree with the
// deparser. Run: go test ./schema -run XXX -fuzz FuzzParseDump -fuzztime 2m
func FuzzParseDump(f *testing.F) {
	b, err := os.ReadFile("../testdata/pagila/schema.sql")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(b),
		generateDump(3),
		"CREATE TABLE \"Order Items\" (id serial PRIMARY KEY, \"Unit Price\" numeric(10,2) CHECK (\"Unit Price\" > 0), \"user\" text UNIQUE);",
		"CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (a_id int REFERENCES a ON DELETE SET NULL DEFERRABLE, x int DEFAULT -1);",
		"CREATE TABLE p (k text, v int DEFAULT '5'::integer) PARTITION BY LIST (k); CREATE TABLE p1 PARTITION OF p FOR VALUES IN ('a');",
		"CREATE TABLE t (a int, b text); CREATE VIEW v AS WITH c AS (SELECT a FROM t) SELECT c.a, (SELECT max(b) FROM t t2 WHERE t2.a = c.a) FROM c;",
		"\\restrict k\nCREATE TYPE e AS ENUM ('x'); CREATE DOMAIN d AS int CHECK (VALUE > 0);\n\\unrestrict k\n",
		"CREATE TABLE t (a int); CREATE INDEX ON t (lower(a::text)) WHERE a > 0; ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		s, err := ParseDump("fuzz.sql", sql)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(err.Error(), "syntax error") &&
				!strings.Contains(err.Error(), "unterminated") {
				t.Errorf("multi-line error: %q", err)
			}
			return
		}
		for _, tab := range s.Tables {
			tab.BatchKey()
		}
		for k := range s.Tables {
			s.ViewsUsingRelation(k)
		}
	})
}
