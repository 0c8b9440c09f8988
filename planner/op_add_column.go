package planner

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// addColumn plans ALTER TABLE t ADD COLUMN c type [NOT NULL] [DEFAULT e]
// [constraints].
//
// Since PostgreSQL 11 adding a column is a catalog change when its default
// is not volatile (or absent): existing rows read the default from the
// catalog, nothing is rewritten. What goes wrong naively:
//
//   - a volatile default (random(), gen_random_uuid(), clock_timestamp(),
//     nextval()) gives each row its own value, so PostgreSQL rewrites the
//     whole table under ACCESS EXCLUSIVE;
//   - NOT NULL without a default fails on a non-empty table (every existing
//     row would be NULL);
//   - a column of a domain with constraints makes PostgreSQL check every
//     row (a rewrite), whatever the default.
//
// The plan, by case:
//
//	nullable, or a non-volatile default   one expand step (brief ACCESS
//	                                      EXCLUSIVE, no rewrite);
//	volatile default                      expand: add the column without
//	                                      default, then SET DEFAULT (new rows
//	                                      get it); migrate: batched backfill
//	                                      of the existing rows with the
//	                                      expression, then the SET NOT NULL
//	                                      sequence if NOT NULL was asked;
//	NOT NULL without default              expand: add the column nullable;
//	                                      migrate: the application release
//	                                      writes it in new rows and fills it
//	                                      in existing ones (there is no value
//	                                      cutover could derive); contract:
//	                                      the SET NOT NULL sequence, gated on
//	                                      no NULL being left.
//
// Inline CHECK, UNIQUE, PRIMARY KEY and REFERENCES constraints become the
// table constraints they stand for and are planned by their own change
// kinds (op_add_check.go, op_add_unique.go, op_add_foreign_key.go), after
// the column exists and, when there is a backfill, after it. A table's
// backfills are merged: two new columns of one table share one pass.
type addColumn struct {
	si          stmtInfo
	table       relName
	name        string
	ifNotExists bool

	typ     colType
	typeSQL string // with COLLATE
	// canonType is the type in the schema model's form.
	canonType string
	notNull   bool
	// def is the default expression ("" for none); volatile says it must
	// be evaluated per row.
	def       string
	defNull   bool // DEFAULT NULL
	volatile  bool
	unknownFn []string // functions of unknown volatility in the default
	// extra are the inline constraints, as their own operations.
	extra []operation

	// From the schema.
	tab    *schema.Table
	exists bool // IF NOT EXISTS and the column exists
}

func newAddColumn(si stmtInfo, t relName, def *pg_query.ColumnDef, ifNotExists bool) (operation, error) {
	if def == nil || def.TypeName == nil {
		return nil, si.unsupported("ADD COLUMN without a column type")
	}
	op := &addColumn{si: si, table: t, name: def.Colname, ifNotExists: ifNotExists}
	if len(def.TypeName.Names) == 1 {
		switch def.TypeName.Names[0].GetString_().GetSval() {
		case "serial", "serial4", "bigserial", "serial8", "smallserial", "serial2":
			return nil, si.unsafe(addColumnRewrite(t, "a serial column fills every existing row from a new sequence", "CREATE SEQUENCE, then ADD COLUMN ... DEFAULT nextval(...) (`cutover plan` backfills it in batches) and ALTER SEQUENCE ... OWNED BY"),
				"a serial column fills every existing row from a new sequence, rewriting the table under ACCESS EXCLUSIVE; write it as CREATE SEQUENCE, then ADD COLUMN with DEFAULT nextval(...) (cutover backfills that in batches) and ALTER SEQUENCE ... OWNED BY")
		}
	}
	typ, err := typeOf(def.TypeName)
	if err != nil {
		return nil, si.unsupported(err.Error())
	}
	op.typ = typ
	op.canonType = schema.FormatType(def.TypeName)
	if op.typeSQL, err = columnTypeSQL(def.TypeName, def.CollClause); err != nil {
		return nil, si.unsupported("cannot re-emit the column type: " + err.Error())
	}
	var inline []*pg_query.Constraint
	for _, n := range def.Constraints {
		con := n.GetConstraint()
		if con == nil {
			return nil, si.unsupported("unexpected column option")
		}
		switch con.Contype {
		case pg_query.ConstrType_CONSTR_NULL:
		case pg_query.ConstrType_CONSTR_NOTNULL:
			op.notNull = true
		case pg_query.ConstrType_CONSTR_DEFAULT:
			if err := op.setDefault(si, con.RawExpr); err != nil {
				return nil, err
			}
		case pg_query.ConstrType_CONSTR_GENERATED:
			return nil, si.unsafe(addColumnRewrite(t, "a stored generated column is computed for every existing row", "add a plain column, fill it with a batched UPDATE and keep it current in the application or a trigger"),
				"a stored generated column is computed for every existing row, rewriting the table under ACCESS EXCLUSIVE; add a plain column, fill it with a batched UPDATE and keep it current in the application or a trigger instead")
		case pg_query.ConstrType_CONSTR_IDENTITY:
			return nil, si.unsafe(addColumnRewrite(t, "an identity column fills every existing row from its sequence", "add the column with DEFAULT nextval(...) of a new sequence (`cutover plan` backfills it in batches)"),
				"an identity column fills every existing row from its sequence, rewriting the table under ACCESS EXCLUSIVE; add the column with DEFAULT nextval(...) of a new sequence instead (cutover backfills that in batches)")
		case pg_query.ConstrType_CONSTR_CHECK, pg_query.ConstrType_CONSTR_UNIQUE,
			pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_FOREIGN:
			inline = append(inline, proto.Clone(con).(*pg_query.Constraint))
			if con.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
				op.notNull = true
			}
		case pg_query.ConstrType_CONSTR_ATTR_DEFERRABLE, pg_query.ConstrType_CONSTR_ATTR_NOT_DEFERRABLE,
			pg_query.ConstrType_CONSTR_ATTR_DEFERRED, pg_query.ConstrType_CONSTR_ATTR_IMMEDIATE:
			// These qualify the constraint written before them.
			if len(inline) == 0 {
				return nil, si.invalid("DEFERRABLE / INITIALLY without a constraint before it")
			}
			last := inline[len(inline)-1]
			switch con.Contype {
			case pg_query.ConstrType_CONSTR_ATTR_DEFERRABLE:
				last.Deferrable = true
			case pg_query.ConstrType_CONSTR_ATTR_NOT_DEFERRABLE:
				last.Deferrable = false
			case pg_query.ConstrType_CONSTR_ATTR_DEFERRED:
				last.Deferrable, last.Initdeferred = true, true
			case pg_query.ConstrType_CONSTR_ATTR_IMMEDIATE:
				last.Initdeferred = false
			}
		default:
			return nil, si.unsupported("this column option is not planned by cutover")
		}
	}
	for _, con := range inline {
		if err := op.addInline(si, con); err != nil {
			return nil, err
		}
	}
	if op.def == "" && hasPrimaryKey(inline) {
		return nil, si.invalid("a new PRIMARY KEY column needs a value in every existing row: give it a DEFAULT (e.g. gen_random_uuid() or nextval of a new sequence; cutover backfills it in batches)")
	}
	if op.notNull && op.defNull {
		return nil, si.invalid("column " + op.name + " is NOT NULL with DEFAULT NULL: PostgreSQL would fail on any existing row")
	}
	return op, nil
}

func hasPrimaryKey(cons []*pg_query.Constraint) bool {
	for _, c := range cons {
		if c.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
			return true
		}
	}
	return false
}

// setDefault records the default and whether it is volatile.
func (op *addColumn) setDefault(si stmtInfo, expr *pg_query.Node) error {
	if expr == nil {
		return nil
	}
	if c := expr.GetAConst(); c != nil && c.Isnull {
		op.defNull = true
		return nil
	}
	if cols := columnRefNames(expr); len(cols) > 0 {
		return si.invalid("a DEFAULT expression cannot refer to columns (" + strings.Join(cols, ", ") + ")")
	}
	s, err := deparseExpr(expr)
	if err != nil {
		return si.unsupported("cannot re-emit the default: " + err.Error())
	}
	op.def = s
	op.volatile, op.unknownFn = volatility(expr)
	return nil
}

// addInline turns an inline column constraint into the table constraint it
// stands for and its operation.
func (op *addColumn) addInline(si stmtInfo, con *pg_query.Constraint) error {
	col := []*pg_query.Node{{Node: &pg_query.Node_String_{String_: &pg_query.String{Sval: op.name}}}}
	var extra operation
	var err error
	switch con.Contype {
	case pg_query.ConstrType_CONSTR_CHECK:
		extra, err = newAddCheck(si, op.table, con)
	case pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY:
		con.Keys = col
		extra, err = newAddUnique(si, op.table, con, con.Contype == pg_query.ConstrType_CONSTR_PRIMARY)
	case pg_query.ConstrType_CONSTR_FOREIGN:
		con.FkAttrs = col
		extra, err = newAddForeignKey(si, op.table, con)
	}
	if err != nil {
		return err
	}
	op.extra = append(op.extra, extra)
	return nil
}

// volatileFunctions are functions that return a new value on every call; a
// default calling one makes ADD COLUMN rewrite the table.
var volatileFunctions = setOfStrings(
	"random", "random_normal", "setseed", "gen_random_uuid", "gen_random_bytes",
	"uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4", "uuidv4", "uuidv7",
	"clock_timestamp", "timeofday", "nextval", "currval", "lastval", "setval",
	"txid_current", "pg_current_xact_id",
)

// stableFunctions are common immutable or stable functions: evaluated once
// by ADD COLUMN, which stores the value in the catalog (now() is the
// transaction's start time, the same for every row).
var stableFunctions = setOfStrings(
	"now", "transaction_timestamp", "statement_timestamp", "current_setting",
	"lower", "upper", "length", "char_length", "concat", "concat_ws", "format",
	"to_char", "to_date", "to_timestamp", "to_number", "make_date", "make_time",
	"make_timestamp", "make_timestamptz", "make_interval", "date_trunc",
	"date_part", "timezone", "abs", "round", "trunc", "floor", "ceil",
	"md5", "encode", "decode", "left", "right", "substr", "substring",
	"replace", "btrim", "ltrim", "rtrim", "lpad", "rpad", "repeat",
	"jsonb_build_object", "json_build_object", "jsonb_build_array",
	"json_build_array", "to_jsonb", "to_json", "array_fill", "uuid_nil",
	"int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange",
)

// volatility reports whether the expression calls a volatile function; a
// function cutover does not know is treated as volatile (the safe choice:
// a backfill instead of a rewrite) and returned for the plan's assumptions.
func volatility(expr *pg_query.Node) (volatile bool, unknown []string) {
	walk(expr.ProtoReflect(), func(m protoreflect.Message) {
		fc, ok := m.Interface().(*pg_query.FuncCall)
		if !ok {
			return
		}
		names := nameList(fc.Funcname)
		name := names[len(names)-1]
		builtin := len(names) == 1 || names[0] == "pg_catalog"
		switch {
		case builtin && volatileFunctions[name]:
			volatile = true
		case builtin && stableFunctions[name]:
		default:
			volatile = true
			qual := strings.Join(names, ".")
			if !containsString(unknown, qual) {
				unknown = append(unknown, qual)
			}
		}
	})
	return volatile, unknown
}

func (op *addColumn) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	op.tab = tab
	if tab.Column(op.name) != nil {
		if op.ifNotExists {
			op.exists = true
			return nil
		}
		return op.si.invalid(fmt.Sprintf("table %s already has a column named %s", op.table, op.name))
	}
	if tab.PartitionOf != "" {
		return op.si.invalid(fmt.Sprintf("%s is a partition of %s: PostgreSQL refuses to add a column to a partition; add it to %s", op.table, tab.PartitionOf, tab.PartitionOf))
	}
	if !typeKnown(s, op.typ) {
		return op.si.invalid(fmt.Sprintf("type %s does not exist in the schema (not a built-in type, nor an enum, domain or type any column already has)", op.typ.label()))
	}
	if d := domainWithConstraints(s, op.typ); d != nil {
		return op.si.unsafe(addColumnRewrite(op.table, fmt.Sprintf("type %s.%s is a domain with constraints, which PostgreSQL checks against every existing row", d.Schema, d.Name), fmt.Sprintf("add the column as %s with a CHECK constraint (`cutover plan` adds it online)", d.Type)),
			fmt.Sprintf("type %s.%s is a domain with constraints: PostgreSQL checks them against every existing row when the column is added, rewriting the table under ACCESS EXCLUSIVE whatever the default; add the column as %s with a CHECK constraint instead (cutover plans that online)", d.Schema, d.Name, d.Type))
	}
	if len(op.extra) > 0 {
		// The inline constraints are checked against the table as it will
		// be once the column exists.
		with := schemaWithColumn(s, tab, &schema.Column{Name: op.name, Type: op.canonType, NotNull: op.notNull, Default: op.def})
		for _, e := range op.extra {
			if err := e.validate(with); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaWithColumn returns a shallow copy of s in which table tab has one
// more column.
func schemaWithColumn(s *schema.Schema, tab *schema.Table, col *schema.Column) *schema.Schema {
	cp := *s
	cp.Tables = make(map[string]*schema.Table, len(s.Tables))
	for k, v := range s.Tables {
		cp.Tables[k] = v
	}
	t := *tab
	t.Columns = append(append([]*schema.Column{}, tab.Columns...), col)
	cp.Tables[tab.Key()] = &t
	return &cp
}

// addColumnRewrite is an ADD COLUMN that fills every existing row: it
// rewrites the table under ACCESS EXCLUSIVE.
func addColumnRewrite(t relName, why, do string) asWritten {
	return asWritten{rule: RuleAddColumnRewrite, lock: plans.LockAccessExclusive, table: t, held: heldRewrite, impact: plans.ImpactRewrite, why: why, do: do}
}

// naive: instant with no default or a non-volatile one (PostgreSQL 11+);
// a volatile default rewrites the table, NOT NULL without a default fails
// on any row; inline constraints answer for themselves.
func (op *addColumn) naive(ctx *naiveContext) asWritten {
	if ctx.isNew(op.table) || op.exists {
		return asWritten{}
	}
	self := safeLock(plans.LockAccessExclusive, op.table)
	rewrite := func(why string) asWritten {
		return addColumnRewrite(op.table, why, fmt.Sprintf("add %s without a default, SET DEFAULT for new rows, then backfill existing rows in batches (`cutover plan`)", op.name))
	}
	switch {
	case op.def != "" && len(op.unknownFn) > 0:
		self = rewrite(fmt.Sprintf("cutover does not know %s and takes it for volatile, which gives every existing row its own value (if it is immutable or stable, the statement is safe: suppress this with a cutover:ignore comment)", strings.Join(op.unknownFn, ", ")))
	case op.def != "" && op.volatile:
		self = rewrite(fmt.Sprintf("the default %s is volatile, so every existing row gets its own value", op.def))
	case op.def != "" && ctx.serverVersion() > 0 && ctx.serverVersion() < 110000:
		self = rewrite("before PostgreSQL 11 ADD COLUMN writes any default into every existing row")
	case op.notNull && op.def == "":
		self = asWritten{rule: RuleAddColumnNotNull, lock: plans.LockAccessExclusive, table: op.table, held: heldInstant,
			why: fmt.Sprintf("%s is NOT NULL without a default: PostgreSQL refuses the statement as soon as %s has a row", op.name, op.table),
			do:  fmt.Sprintf("add %s nullable (or with a constant default), fill it, then SET NOT NULL through a validated CHECK (`cutover plan`)", op.name)}
	}
	all := []asWritten{self}
	for _, e := range op.extra {
		all = append(all, e.naive(ctx))
	}
	return firstUnsafe(all...)
}

func (op *addColumn) plan(b *builder) error {
	if op.exists {
		b.warn("Column %s already exists in %s: ADD COLUMN IF NOT EXISTS changes nothing.", op.name, op.table)
		return nil
	}
	// A column of that name dropped or renamed earlier in the input is
	// there until the contract phase.
	b.claim(columnKey(op.table, op.name), op.table.String()+"."+op.name)
	if b.isNew(op.table) {
		colDef := op.typeSQL + notNullSQL(op.notNull)
		if op.def != "" {
			colDef += " DEFAULT " + op.def
		}
		step := op.addStep(b, colDef, "")
		step.Summary = fmt.Sprintf("Add column %s %s", op.name, colDef)
		b.newTableStep(op.table, step)
		for _, e := range op.extra {
			if err := e.plan(b); err != nil {
				return err
			}
		}
		return nil
	}
	b.touch(op.table)
	if op.tab == nil {
		b.assume("Type %s of the new column %s.%s is not a domain with constraints (adding such a column rewrites the table).", op.typ.label(), op.table, op.name)
	}
	for _, fn := range op.unknownFn {
		b.assume("Function %s in the default of %s.%s is volatile (cutover does not know it): the plan backfills existing rows in batches instead of storing one value for all of them; if it is immutable or stable, the naive statement is already safe.", fn, op.table, op.name)
	}
	switch {
	case op.def != "" && !op.volatile:
		op.planOneStep(b, fmt.Sprintf("%s%s DEFAULT %s", op.typeSQL, notNullSQL(op.notNull), op.def),
			"with a non-volatile default: existing rows read it from the catalog, nothing is rewritten")
	case op.def == "" && !op.notNull:
		op.planOneStep(b, op.typeSQL, "nullable, no default: catalog only")
	case op.def != "":
		op.planVolatile(b)
	default:
		op.planNotNullWithoutDefault(b)
	}
	for _, e := range op.extra {
		if err := e.plan(b); err != nil {
			return err
		}
	}
	return nil
}

func notNullSQL(notNull bool) string {
	if notNull {
		return " NOT NULL"
	}
	return ""
}

// addStep is the ADD COLUMN step with the given column definition.
func (op *addColumn) addStep(b *builder, colDef, why string) plans.Step {
	t := op.table.quoted()
	s := plans.Step{
		ID:            "add-column-" + op.name,
		Summary:       fmt.Sprintf("Add column %s %s (%s)", op.name, op.typeSQL, why),
		SQL:           fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", t, ident(op.name), colDef),
		Rollback:      fmt.Sprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", t, ident(op.name)),
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD COLUMN")},
	}
	if b.schema != nil && b.schema.ServerVersion > 0 && b.schema.ServerVersion < 110000 && op.def != "" {
		s.Rewrite = plans.ImpactRewrite
		s.Hazards = append(s.Hazards, plans.Hazard{Type: plans.HazardTableRewrite,
			Message: "before PostgreSQL 11, ADD COLUMN with a default rewrites the whole table under ACCESS EXCLUSIVE"})
		b.warn("PostgreSQL before 11 rewrites the table for ADD COLUMN ... DEFAULT: add the column without default, SET DEFAULT, and backfill instead.")
	}
	return s
}

// planOneStep: the naive statement is already safe.
func (op *addColumn) planOneStep(b *builder, colDef, why string) {
	b.add(stageExpand, op.addStep(b, colDef, why))
}

// planVolatile: add without default, set the default for new rows,
// backfill existing rows in batches, then NOT NULL if asked.
func (op *addColumn) planVolatile(b *builder) {
	t, c := op.table.quoted(), ident(op.name)
	s := op.addStep(b, op.typeSQL, "no default yet, so nothing is rewritten")
	s.SQL += fmt.Sprintf(";\nALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t, c, op.def)
	s.Summary = fmt.Sprintf("Add column %s %s without default, then set its default %s for rows inserted from now on", op.name, op.typeSQL, op.def)
	b.add(stageExpand, s)
	b.backfill(op.table, fmt.Sprintf("%s = COALESCE(%s, %s)", c, c, op.def), fmt.Sprintf("%s IS NULL", c),
		fmt.Sprintf("%s with its default %s, row by row", op.name, op.def))
	b.warn("The default %s of %s.%s is volatile: each existing row gets its own value from the batched backfill (as the naive statement would give it, but without rewriting the table under ACCESS EXCLUSIVE).", op.def, op.table, op.name)
	if op.notNull {
		check := b.chooseName(constraintName, op.table.Schema, notNullCheckName(op.table, op.name), "", "")
		add, validate := notNullCheckSteps(op.table, op.name, check)
		b.add(stageAfterBackfill, add)
		b.add(stageAfterBackfill, validate)
		b.add(stageAfterBackfill, setNotNullStep(b, op.table, op.name, check))
	}
}

// planNotNullWithoutDefault: no value exists for the existing rows, so the
// application must provide them before NOT NULL can hold.
func (op *addColumn) planNotNullWithoutDefault(b *builder) {
	b.add(stageExpand, op.addStep(b, op.typeSQL, "nullable for now: NOT NULL comes once every row has a value"))
	b.instruct(stageRelease, fmt.Sprintf("Write %s.%s in every INSERT, and give every existing row a value (there is no default to derive it from: fill it with a batched UPDATE, e.g. `cutover plan` an UPDATE ... WHERE %s IS NULL). The contract phase makes the column NOT NULL and is gated on no NULL being left.", op.table, op.name, ident(op.name)))
	check := b.chooseName(constraintName, op.table.Schema, notNullCheckName(op.table, op.name), "", "")
	add, validate := notNullCheckSteps(op.table, op.name, check)
	b.add(stageContract, notNullPrecheck(op.table, op.name))
	b.add(stageContract, add)
	b.add(stageContract, validate)
	b.add(stageContract, setNotNullStep(b, op.table, op.name, check))
	b.warn("%s.%s is NOT NULL without a default: PostgreSQL would refuse the statement on a non-empty table. The plan adds it nullable, the application fills it, and the contract phase sets NOT NULL (on an empty table the naive statement is fine).", op.table, op.name)
}
