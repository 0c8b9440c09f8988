package planner

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// stage is a slot of the plan that operations contribute to. Stages are
// emitted in this order; each non-empty stage becomes one deploy, so the
// contributions of several operations to the same stage are merged into one
// deploy (one application release, one backfill pass per table).
type stage int

const (
	// stageExpand: additive database changes (new columns, NOT VALID
	// constraints, sync triggers, concurrent indexes).
	stageExpand stage = iota
	// stageBackfill: batched data changes, one per table (merged).
	stageBackfill
	// stageAfterBackfill: steps that need the data in place (validations,
	// NOT NULL, indexes on backfilled columns).
	stageAfterBackfill
	// stageRelease: the application release that moves to the new shape
	// (reads and writes the new column, uses the new name).
	stageRelease
	// stageStopOld: the release that stops referencing what will be removed.
	stageStopOld
	// stageContract: removal of the old, once nothing uses it.
	stageContract
	// stageCoolOff: an operator wait (e.g. before dropping a renamed-aside table).
	stageCoolOff
	// stageFinal: the last irreversible removals after the cooling-off.
	stageFinal
	numStages
)

// stageInfo describes each stage: the phase it belongs to, whether it is an
// app release, and the deploy title.
var stageInfo = [numStages]struct {
	phase plans.PhaseName
	kind  plans.DeployKind
	title string
	idTag string
}{
	stageExpand:        {plans.Expand, plans.DB, "Expand the schema", "E"},
	stageBackfill:      {plans.Migrate, plans.DB, "Backfill in batches", "B"},
	stageAfterBackfill: {plans.Migrate, plans.DB, "Finish the new shape", "M"},
	stageRelease:       {plans.Migrate, plans.App, "Application release: use the new shape", ""},
	stageStopOld:       {plans.Migrate, plans.App, "Application release: stop using the old shape", ""},
	stageContract:      {plans.Contract, plans.DB, "Contract the schema", "C"},
	stageCoolOff:       {plans.Contract, plans.App, "Cooling-off period", ""},
	stageFinal:         {plans.Contract, plans.DB, "Remove what was set aside", "F"},
}

// builder collects what each operation contributes and assembles the plan.
type builder struct {
	// schema is the schema the operation being planned was validated
	// against: the input's schema as the statements before it leave it
	// (Plan sets it before each operation's plan). base is the schema the
	// plan starts from, which the plan's facts describe.
	schema *schema.Schema
	base   *schema.Schema
	opts   Options

	// Multi-statement input (multistatement.go): the tables created by
	// earlier statements (set by Plan per operation), the columns an
	// earlier operation swaps in the contract phase, the names removed
	// only in a late stage, and the first conflict found.
	created  map[string]bool
	swapped  map[string]string
	freed    map[string]string
	conflict string
	// ready holds, per table key, the stage at which a unique key this
	// plan adds to it exists (keyReady).
	ready map[string]stage

	steps        [numStages][]plans.Step
	instructions [numStages][]string
	backfills    map[string]*backfillSpec
	backfillKeys []string // table keys in first-seen order
	warnings     []string
	assumptions  []string
	tables       []string // keys of tables touched, first-seen order
	seenTable    map[string]bool
	// names holds the relation and constraint names the plan creates (see
	// reserveName in ddlkit.go); nil until the first is reserved.
	names map[string]bool
}

func newBuilder(s *schema.Schema, opts Options) *builder {
	return &builder{schema: s, base: s, opts: opts, backfills: map[string]*backfillSpec{}, seenTable: map[string]bool{}}
}

// add appends a db step to a stage. The step's ID is a slug ("add-column-x")
// that build() prefixes with the stage letter and position.
func (b *builder) add(st stage, s plans.Step) {
	if stageInfo[st].kind != plans.DB {
		panic(fmt.Sprintf("planner: db step added to app stage %d", st))
	}
	b.steps[st] = append(b.steps[st], s)
}

// instruct adds an instruction to an application release stage, once.
func (b *builder) instruct(st stage, text string) {
	if stageInfo[st].kind != plans.App {
		panic(fmt.Sprintf("planner: instruction added to db stage %d", st))
	}
	for _, t := range b.instructions[st] {
		if t == text {
			return
		}
	}
	b.instructions[st] = append(b.instructions[st], text)
}

// warn adds a warning once.
func (b *builder) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	for _, x := range b.warnings {
		if x == w {
			return
		}
	}
	b.warnings = append(b.warnings, w)
}

// assume records an assumption made for lack of schema facts, once.
func (b *builder) assume(format string, args ...any) {
	a := fmt.Sprintf(format, args...)
	for _, x := range b.assumptions {
		if x == a {
			return
		}
	}
	b.assumptions = append(b.assumptions, a)
}

// touch records that the plan changes the table, for the plan's facts.
func (b *builder) touch(r relName) {
	if !b.seenTable[r.key()] {
		b.seenTable[r.key()] = true
		b.tables = append(b.tables, r.key())
	}
}

// table returns the schema's table, or nil when planning without a schema.
func (b *builder) table(r relName) *schema.Table {
	return b.schema.Table(r.Schema, r.Name)
}

// backfillSpec is the merged backfill of one table.
type backfillSpec struct {
	table relName
	sets  []string // `"col" = expr`
	needs []string // predicates: row still needs work
	what  []string // summaries, for the step's summary
	// hazards are added to the step (backfillHazard).
	hazards []plans.Hazard
	// delete marks a batched DELETE (never merged with updates).
	delete bool
	// step, when set, is a user's UPDATE or DELETE planned as its own
	// batched step (see batchedDML): emitted as is, never merged.
	step *plans.Step
	// schema is the schema of the operation that registered the backfill
	// first: the table as the backfill finds it.
	schema *schema.Schema
}

// batchedDML registers a user's UPDATE or DELETE (op_batched_dml.go builds
// the step) as its own batched step, kept in input order with the merged
// backfills: its WHERE applies to its own assignments only.
func (b *builder) batchedDML(table relName, step plans.Step) {
	k := fmt.Sprintf("%s#dml%d", table.key(), len(b.backfillKeys))
	b.backfills[k] = &backfillSpec{table: table, step: &step, delete: step.Backfill != nil && step.Backfill.Delete}
	b.backfillKeys = append(b.backfillKeys, k)
}

// backfill registers an assignment for the table's backfill: set is
// `"col" = expr`, need is the predicate true for rows still needing it.
// Several calls for one table merge into one pass over it.
func (b *builder) backfill(table relName, set, need, what string) {
	k := table.key()
	spec := b.backfills[k]
	if spec == nil {
		spec = &backfillSpec{table: table, schema: b.schema}
		b.backfills[k] = spec
		b.backfillKeys = append(b.backfillKeys, k)
	}
	spec.sets = append(spec.sets, set)
	spec.needs = append(spec.needs, need)
	spec.what = append(spec.what, what)
}

// backfillHazard adds a hazard to the table's backfill step, registered
// by an earlier backfill call.
func (b *builder) backfillHazard(table relName, h plans.Hazard) {
	if spec := b.backfills[table.key()]; spec != nil {
		spec.hazards = append(spec.hazards, h)
	}
}

// build assembles the plan.
func (b *builder) build(input string) (*plans.Plan, error) {
	if err := b.emitBackfills(); err != nil {
		return nil, err
	}
	p := &plans.Plan{
		Version:     plans.Version,
		Input:       input,
		Warnings:    b.warnings,
		Assumptions: b.assumptions,
		Facts:       b.facts(),
	}
	for st := stage(0); st < numStages; st++ {
		info := stageInfo[st]
		var d plans.Deploy
		switch info.kind {
		case plans.DB:
			if len(b.steps[st]) == 0 {
				continue
			}
			d = plans.Deploy{Kind: plans.DB, Title: info.title, Steps: b.steps[st]}
			for i := range d.Steps {
				d.Steps[i].ID = fmt.Sprintf("%s%d-%s", info.idTag, i+1, slug(d.Steps[i].ID))
			}
			d.Instructions = dbInstructions(d.Steps)
		case plans.App:
			if len(b.instructions[st]) == 0 {
				continue
			}
			d = plans.Deploy{Kind: plans.App, Title: info.title, Instructions: b.instructions[st]}
		}
		ph := p.Phase(info.phase)
		if ph == nil {
			p.Phases = append(p.Phases, plans.Phase{Name: info.phase})
			ph = &p.Phases[len(p.Phases)-1]
		}
		ph.Deploys = append(ph.Deploys, d)
	}
	for i := range p.Phases {
		p.Phases[i].Rollback = phaseRollback(p, p.Phases[i].Name)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("planner produced an invalid plan (a cutover bug): %w", err)
	}
	return p, nil
}

// dbInstructions tells the operator how a db deploy is run.
func dbInstructions(steps []plans.Step) []string {
	out := []string{"Run with `cutover apply`, which runs each step in its own short transaction with a short lock_timeout and retries with backoff when it times out. By hand: `SET lock_timeout = '250ms'` first and retry on timeout, because a step waiting for its lock makes every later query on the table wait too."}
	for _, s := range steps {
		if !s.Transactional {
			out = append(out, "Steps marked \"outside a transaction\" cannot run inside BEGIN ... COMMIT; run each of their statements on its own.")
			break
		}
	}
	return out
}

// phaseRollback says what rolling back from the end of a phase means, for
// this plan: which phases' steps are undone, and whether an application
// release must be redeployed first.
func phaseRollback(p *plans.Plan, name plans.PhaseName) string {
	var undo []string
	appBefore, irreversible := false, false
	for _, ph := range p.Phases {
		hasDB := false
		for _, d := range ph.Deploys {
			if d.Kind == plans.App {
				appBefore = true
			}
			for _, s := range d.Steps {
				hasDB = true
				if s.Irreversible {
					irreversible = true
				}
			}
		}
		if hasDB {
			undo = append([]string{string(ph.Name)}, undo...)
		}
		if ph.Name == name {
			break
		}
	}
	var sb strings.Builder
	then := "Run"
	if appBefore {
		sb.WriteString("First redeploy the application release that preceded this plan, so nothing uses the new shape. ")
		then = "Then run"
	}
	if len(undo) == 0 {
		sb.WriteString("No database step has run by the end of this phase: there is nothing to undo in the database.")
		return sb.String()
	}
	fmt.Fprintf(&sb, "%s the rollback of each %s step in reverse order.", then, strings.Join(undo, ", then each "))
	if !appBefore {
		sb.WriteString(" No application release has happened yet, so nothing else is needed.")
	}
	if irreversible {
		sb.WriteString(" Steps marked irreversible cannot be undone: rolling back stops there (what they removed is gone; restore it from a backup or plan the reverse change).")
	}
	return sb.String()
}

// emitBackfills turns the merged backfills into steps with gates.
func (b *builder) emitBackfills() error {
	for _, k := range b.backfillKeys {
		spec := b.backfills[k]
		if spec.step != nil {
			b.steps[stageBackfill] = append(b.steps[stageBackfill], *spec.step)
			continue
		}
		t := spec.schema.Table(spec.table.Schema, spec.table.Name)
		var key []string
		var triggers []string
		if t != nil {
			for _, c := range t.BatchKey() {
				key = append(key, ident(c))
			}
			triggers = t.TriggersOn("UPDATE")
			if len(key) == 0 {
				b.warn("%s has no primary key or unique NOT NULL key: the backfill cannot be batched by key and will use ctid ranges, which is slower and must re-scan rows updated concurrently.", spec.table)
			}
			if len(triggers) > 0 {
				b.warn("The backfill of %s fires its UPDATE trigger(s) %s on every row; decide before running it whether they should fire (`SET session_replication_role = replica` skips them, for a role allowed to set it).", spec.table, strings.Join(triggers, ", "))
			}
		} else {
			b.assume("%s has a primary key usable for keyset batching.", spec.table)
		}
		where := orJoin(spec.needs)
		sql := fmt.Sprintf("UPDATE %s SET %s WHERE %s", spec.table.quoted(), strings.Join(spec.sets, ", "), where)
		step := plans.Step{
			ID:            "backfill-" + spec.table.Name,
			Summary:       "Backfill " + strings.Join(spec.what, "; ") + " in keyset batches",
			SQL:           sql,
			Rollback:      "SELECT 1 /* nothing to undo: the backfill only fills columns the expand phase added */",
			Lock:          plans.LockRowExclusive,
			Table:         spec.table.String(),
			Transactional: true,
			Rewrite:       plans.ImpactBatched,
			Gate: &plans.Gate{
				Description: "every row of " + spec.table.String() + " is backfilled",
				SQL:         fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", spec.table.quoted(), where),
			},
			Backfill: &plans.Backfill{Table: spec.table.quoted(), Key: key, Set: spec.sets, Where: where, Triggers: triggers},
			Hazards: []plans.Hazard{{Type: plans.HazardHeavyWrite,
				Message: "writes every row once (WAL volume, replica lag); batched and throttled by cutover"}},
		}
		if len(triggers) > 0 {
			step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardFiresTriggers,
				Message: "fires UPDATE trigger(s) " + strings.Join(triggers, ", ")})
		}
		step.Hazards = append(step.Hazards, spec.hazards...)
		b.steps[stageBackfill] = append(b.steps[stageBackfill], step)
	}
	return nil
}

func orJoin(preds []string) string {
	if len(preds) == 1 {
		return preds[0]
	}
	parts := make([]string, len(preds))
	for i, p := range preds {
		parts[i] = "(" + p + ")"
	}
	return strings.Join(parts, " OR ")
}

// facts records the schema facts of the tables the plan touches.
func (b *builder) facts() plans.Facts {
	f := plans.Facts{Source: "none"}
	if b.base != nil {
		f.Source = b.base.Source
		f.ServerVersion = b.base.ServerVersion
	}
	keys := append([]string(nil), b.tables...)
	sort.Strings(keys)
	for _, k := range keys {
		tf := plans.TableFacts{Name: k, Rows: -1, Bytes: -1}
		// The tables as they are before the change; one created or
		// renamed earlier in the input as the last statement found it.
		s := b.base
		if s != nil && s.Tables[k] == nil {
			s = b.schema
		}
		if s != nil {
			if t := s.Tables[k]; t != nil {
				tf.Rows, tf.Bytes = t.RowEstimate, t.Bytes
				tf.BatchKey = t.BatchKey()
				tf.UpdateTriggers = t.TriggersOn("UPDATE")
				tf.Partitioned = t.Partitioned
				for _, v := range s.ViewsUsingRelation(k) {
					tf.DependentViews = append(tf.DependentViews, v.Key())
				}
				if _, ok := b.backfills[k]; ok && t.RowEstimate > 0 {
					tf.BackfillSeconds = float64(t.RowEstimate) / b.opts.backfillRate()
				}
			}
		}
		f.Tables = append(f.Tables, tf)
	}
	return f
}

// slug turns a summary-ish string into an id fragment: lower case letters,
// digits and dashes.
func slug(s string) string {
	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sb.WriteRune(r)
			dash = false
		} else if !dash && sb.Len() > 0 {
			sb.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(sb.String(), "-")
	if len(out) > 48 {
		out = strings.TrimRight(out[:48], "-")
	}
	if out == "" {
		out = "step"
	}
	return out
}
