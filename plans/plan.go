// Package plans holds the plan model: the one data structure the planner
// writes and the executor, the TUI and the exporters read. It depends on
// nothing else in cutover.
//
// A plan is an ordered list of phases (expand, migrate, contract). A phase
// holds ordered deploys; a deploy is either a set of database steps that
// cutover runs ("db") or an application release the operator performs
// ("app"). Each db step carries everything needed to run it safely and to
// explain it: the lock it takes and on which table, whether it rewrites or
// scans, how to undo it, and an optional gate that must pass before the plan
// may go on.
package plans

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Version is the version of the JSON encoding. It changes only when a field
// changes meaning or disappears; new optional fields keep the version.
const Version = 1

// PhaseName names one of the three phases of a zero-downtime change.
type PhaseName string

const (
	Expand   PhaseName = "expand"
	Migrate  PhaseName = "migrate"
	Contract PhaseName = "contract"
)

// PhaseOrder is the order phases always appear in.
var PhaseOrder = []PhaseName{Expand, Migrate, Contract}

// DeployKind says who performs a deploy.
type DeployKind string

const (
	// DB deploys are statements cutover runs.
	DB DeployKind = "db"
	// App deploys are application releases the operator performs.
	App DeployKind = "app"
)

// Lock is the strongest table-level lock a step takes, named as PostgreSQL
// names it in pg_locks.mode (without the "Lock" suffix, upper case words).
type Lock string

const (
	LockNone                 Lock = "none"
	LockAccessShare          Lock = "ACCESS SHARE"
	LockRowExclusive         Lock = "ROW EXCLUSIVE"
	LockShareUpdateExclusive Lock = "SHARE UPDATE EXCLUSIVE"
	LockShare                Lock = "SHARE"
	LockShareRowExclusive    Lock = "SHARE ROW EXCLUSIVE"
	LockAccessExclusive      Lock = "ACCESS EXCLUSIVE"
)

// Blocks reports whether a lock of this mode blocks the application's
// ordinary reads (SELECT) or writes (INSERT/UPDATE/DELETE) while held.
func (l Lock) Blocks() (reads, writes bool) {
	switch l {
	case LockAccessExclusive:
		return true, true
	case LockShare, LockShareRowExclusive:
		return false, true
	}
	return false, false
}

// Impact says how much of the table a step reads or writes.
type Impact string

const (
	// ImpactNone: catalog only, instant once the lock is granted.
	ImpactNone Impact = "none"
	// ImpactScan: reads the whole table (e.g. VALIDATE CONSTRAINT, index build).
	ImpactScan Impact = "scan"
	// ImpactRewrite: rewrites the whole table under its lock.
	ImpactRewrite Impact = "rewrite"
	// ImpactBatched: touches every row, in short batches (a backfill).
	ImpactBatched Impact = "batched"
)

// HazardType is the stable, typed name of a risk; the checker and the
// planner share these names.
type HazardType string

const (
	HazardAccessExclusive HazardType = "ACCESS_EXCLUSIVE_LOCK"
	HazardBlocksWrites    HazardType = "BLOCKS_WRITES"
	HazardTableRewrite    HazardType = "TABLE_REWRITE"
	HazardTableScan       HazardType = "TABLE_SCAN"
	HazardDataLoss        HazardType = "DATA_LOSS"
	HazardDeployBreakage  HazardType = "DEPLOY_WINDOW_BREAKAGE"
	HazardFiresTriggers   HazardType = "FIRES_TRIGGERS"
	HazardCastFailure     HazardType = "CAST_MAY_FAIL"
	HazardIndexBuild      HazardType = "INDEX_BUILD"
	HazardHeavyWrite      HazardType = "HEAVY_WRITE"
)

// Hazard is one typed risk of a step, with a sentence for people.
type Hazard struct {
	Type    HazardType `json:"type"`
	Message string     `json:"message"`
}

// Gate is a verification that must pass before the plan may go on: SQL
// returning one row with one value. It passes when that value is 0 or true.
type Gate struct {
	Description string `json:"description"`
	SQL         string `json:"sql"`
}

// Backfill describes a batched data change the backfill engine runs in
// keyset batches. Step.SQL holds the equivalent single statement (what the
// backfill achieves); the engine runs BatchSQL per key range instead.
type Backfill struct {
	// Table is the qualified, quoted table name.
	Table string `json:"table"`
	// Key lists the quoted columns of the key used for batching; empty when
	// the table has none and the engine must use ctid ranges.
	Key []string `json:"key"`
	// Set holds the assignments `"col" = expr`, empty for a delete.
	Set []string `json:"set,omitempty"`
	// Where is the predicate selecting rows that still need work; it makes
	// every batch idempotent.
	Where string `json:"where"`
	// Delete is true for a batched DELETE.
	Delete bool `json:"delete,omitempty"`
	// Triggers names the table's own UPDATE (or DELETE) triggers that each
	// batch fires.
	Triggers []string `json:"triggers,omitempty"`
}

// Step is one database statement (or batched data change) of a db deploy.
type Step struct {
	// ID is stable for the same input and schema: "E1-add-column".
	ID string `json:"id"`
	// Summary says what the step does in a few words.
	Summary string `json:"summary"`
	SQL     string `json:"sql"`
	// Rollback is SQL undoing the step; empty when Irreversible.
	Rollback string `json:"rollback"`
	// Irreversible is set when the step cannot be undone; the reason says why.
	Irreversible       bool   `json:"irreversible"`
	IrreversibleReason string `json:"irreversible_reason,omitempty"`
	Lock               Lock   `json:"lock"`
	// Table is the qualified table the lock is taken on.
	Table string `json:"table"`
	// Transactional is false when the statement must run outside a
	// transaction block (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE).
	Transactional bool   `json:"transactional"`
	Rewrite       Impact `json:"rewrite"`
	Gate          *Gate  `json:"gate"`
	// Backfill is set for batched data changes.
	Backfill *Backfill `json:"backfill,omitempty"`
	// Removes is set on a step after which a name the application may
	// still use is gone (a column, or a table or view); the executor checks
	// first that nothing uses it any more.
	Removes *Removal `json:"removes,omitempty"`
	Hazards []Hazard `json:"hazards,omitempty"`
}

// Removal names what a step removes for the application: a column of a
// table, or (Column empty) a table or view.
type Removal struct {
	// Table is the qualified relation, in the same form as Step.Table
	// (schema.name, unquoted).
	Table string `json:"table"`
	// Column is the removed column; empty when the relation itself goes.
	Column string `json:"column,omitempty"`
}

// Deploy is one release: database steps, or an application release.
type Deploy struct {
	Kind         DeployKind `json:"kind"`
	Title        string     `json:"title"`
	Instructions []string   `json:"instructions"`
	Steps        []Step     `json:"steps"`
}

// Phase is one of expand, migrate, contract.
type Phase struct {
	Name PhaseName `json:"name"`
	// Rollback says what rolling back from this phase means.
	Rollback string   `json:"rollback"`
	Deploys  []Deploy `json:"deploys"`
}

// TableFacts are the facts about one table that the plan was made from.
type TableFacts struct {
	Name string `json:"name"`
	// Rows and Bytes are estimates; -1 when unknown (offline planning).
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	// BatchKey lists the columns of the primary key or unique NOT NULL key
	// usable for batching; empty when there is none.
	BatchKey       []string `json:"batch_key"`
	UpdateTriggers []string `json:"update_triggers,omitempty"`
	DependentViews []string `json:"dependent_views,omitempty"`
	Partitioned    bool     `json:"partitioned,omitempty"`
	// BackfillSeconds estimates the batched backfill's duration; 0 when unknown.
	BackfillSeconds float64 `json:"backfill_seconds,omitempty"`
}

// Facts are the schema facts a plan was planned against.
type Facts struct {
	// Source: "none", "schema file NAME" or "live database".
	Source string `json:"source"`
	// ServerVersion as server_version_num (150004); 0 when unknown.
	ServerVersion int          `json:"server_version,omitempty"`
	Tables        []TableFacts `json:"tables"`
}

// Plan is the whole change.
type Plan struct {
	Version  int      `json:"version"`
	Input    string   `json:"input"`
	Warnings []string `json:"warnings"`
	// Assumptions lists what the planner assumed for lack of a schema.
	Assumptions []string `json:"assumptions"`
	Facts       Facts    `json:"facts"`
	Phases      []Phase  `json:"phases"`
}

// Phase returns the named phase, or nil when the plan has none.
func (p *Plan) Phase(name PhaseName) *Phase {
	for i := range p.Phases {
		if p.Phases[i].Name == name {
			return &p.Phases[i]
		}
	}
	return nil
}

// Steps returns every db step in order, with the phase and deploy it is in.
func (p *Plan) Steps() []StepRef {
	var out []StepRef
	for pi := range p.Phases {
		for di := range p.Phases[pi].Deploys {
			d := &p.Phases[pi].Deploys[di]
			for si := range d.Steps {
				out = append(out, StepRef{Phase: p.Phases[pi].Name, Deploy: d, Step: &d.Steps[si]})
			}
		}
	}
	return out
}

// StepRef locates a step in its plan.
type StepRef struct {
	Phase  PhaseName
	Deploy *Deploy
	Step   *Step
}

// Hash is the content hash of the plan's canonical JSON encoding; an apply
// run records it so an edited plan is never applied over an older run.
func (p *Plan) Hash() string {
	p.normalize()
	b, err := json.Marshal(p)
	if err != nil {
		// Marshal of this struct cannot fail: it holds only strings,
		// numbers, bools, slices and pointers to such structs.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Encode writes the plan as indented JSON. Empty lists are written as []
// rather than null, so the encoding of a plan is the same whether it was
// built in memory or decoded: Decode then Encode gives back the same bytes.
func Encode(p *Plan) ([]byte, error) {
	p.normalize()
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Decode reads a plan written by Encode. It refuses unknown versions and
// unknown fields, so a plan from a newer cutover is never half-understood.
func Decode(data []byte) (*Plan, error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("plan is not valid JSON: %w", err)
	}
	if head.Version == nil {
		return nil, fmt.Errorf("plan has no \"version\" field: is this a cutover plan?")
	}
	if *head.Version != Version {
		return nil, fmt.Errorf("plan version %d is not supported (this cutover reads version %d)", *head.Version, Version)
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("plan does not match version %d: %w", Version, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.normalize()
	return &p, nil
}

// normalize replaces nil lists by empty ones so that they encode as [].
func (p *Plan) normalize() {
	if p.Warnings == nil {
		p.Warnings = []string{}
	}
	if p.Assumptions == nil {
		p.Assumptions = []string{}
	}
	if p.Facts.Tables == nil {
		p.Facts.Tables = []TableFacts{}
	}
	for ti := range p.Facts.Tables {
		if p.Facts.Tables[ti].BatchKey == nil {
			p.Facts.Tables[ti].BatchKey = []string{}
		}
	}
	if p.Phases == nil {
		p.Phases = []Phase{}
	}
	for pi := range p.Phases {
		ph := &p.Phases[pi]
		if ph.Deploys == nil {
			ph.Deploys = []Deploy{}
		}
		for di := range ph.Deploys {
			d := &ph.Deploys[di]
			if d.Instructions == nil {
				d.Instructions = []string{}
			}
			if d.Steps == nil {
				d.Steps = []Step{}
			}
			for si := range d.Steps {
				if b := d.Steps[si].Backfill; b != nil && b.Key == nil {
					b.Key = []string{}
				}
			}
		}
	}
}

// Validate checks the invariants every reader of a plan relies on.
func (p *Plan) Validate() error {
	seen := map[string]bool{}
	last := -1
	for _, ph := range p.Phases {
		idx := phaseIndex(ph.Name)
		if idx < 0 {
			return fmt.Errorf("plan has an unknown phase %q (want expand, migrate or contract)", ph.Name)
		}
		if idx <= last {
			return fmt.Errorf("plan phase %q is out of order or repeated", ph.Name)
		}
		last = idx
		for _, d := range ph.Deploys {
			switch d.Kind {
			case DB:
				if len(d.Steps) == 0 {
					return fmt.Errorf("db deploy %q in phase %s has no steps", d.Title, ph.Name)
				}
			case App:
				if len(d.Steps) != 0 {
					return fmt.Errorf("app deploy %q in phase %s has db steps", d.Title, ph.Name)
				}
			default:
				return fmt.Errorf("deploy %q in phase %s has unknown kind %q (want db or app)", d.Title, ph.Name, d.Kind)
			}
			for _, s := range d.Steps {
				if s.ID == "" {
					return fmt.Errorf("a step in deploy %q has no id", d.Title)
				}
				if seen[s.ID] {
					return fmt.Errorf("step id %q appears twice", s.ID)
				}
				seen[s.ID] = true
				if s.SQL == "" {
					return fmt.Errorf("step %s has no SQL", s.ID)
				}
				if s.Irreversible && s.Rollback != "" {
					return fmt.Errorf("step %s is irreversible but has rollback SQL", s.ID)
				}
				if !s.Irreversible && s.Rollback == "" {
					return fmt.Errorf("step %s has neither rollback SQL nor an irreversible mark", s.ID)
				}
			}
		}
	}
	return nil
}

func phaseIndex(n PhaseName) int {
	for i, p := range PhaseOrder {
		if p == n {
			return i
		}
	}
	return -1
}
