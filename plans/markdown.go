package plans

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Markdown renders the plan as a runbook a person follows and pastes into a
// pull request: the input, the facts it was planned from, warnings and
// assumptions, a summary table, then every phase and deploy in order with a
// `- [ ]` checklist item per database step and per application instruction,
// each statement, rollback and gate in a ```sql fence.
//
// It is written to read well both rendered (GitHub) and as plain text in a
// terminal: short lines of prose, fences rather than indentation for code,
// no HTML. The output is a pure function of the plan.
func Markdown(p *Plan) string {
	var w mdWriter
	w.line("# cutover plan")
	w.blank()
	w.line("Input:")
	w.blank()
	w.fence("", "sql", p.Input)

	nDeploys, nDB, nApp := countDeploys(p)
	w.blank()
	w.line(fmt.Sprintf("%s in %s (%d database, %d application). Work through them in order: tick each box when it is done, and do not start a deploy before every gate of the previous one has passed.",
		plural(nDeploys, "deploy"), plural(len(p.Phases), "phase"), nDB, nApp))

	w.mdFacts(&p.Facts)

	if len(p.Warnings) > 0 {
		w.blank()
		w.line("## Warnings")
		w.blank()
		for _, s := range p.Warnings {
			w.line("- " + prose(s))
		}
	}
	if len(p.Assumptions) > 0 {
		w.blank()
		w.line("## Assumptions")
		w.blank()
		for _, s := range p.Assumptions {
			w.line("- " + prose(s))
		}
	}

	w.mdSummary(p)

	n := 0
	for pi := range p.Phases {
		ph := &p.Phases[pi]
		w.blank()
		w.line(fmt.Sprintf("## Phase %d of %d: %s", pi+1, len(p.Phases), ph.Name))
		if about := phaseAbout[ph.Name]; about != "" {
			w.blank()
			w.line(about)
		}
		if ph.Rollback != "" {
			w.blank()
			w.line("**Rolling back from here:** " + prose(ph.Rollback))
		}
		for di := range ph.Deploys {
			n++
			w.mdDeploy(n, nDeploys, &ph.Deploys[di])
		}
	}
	return w.String()
}

// phaseAbout says in one line what each phase is for.
var phaseAbout = map[PhaseName]string{
	Expand:   "Additive changes only: the running application keeps working unchanged.",
	Migrate:  "The new shape is completed (backfills, validations, indexes) and the application moves to it.",
	Contract: "What nothing uses any more is removed.",
}

func (w *mdWriter) mdFacts(f *Facts) {
	w.blank()
	w.line("## Facts")
	w.blank()
	w.line("- Planned against: " + prose(sourceText(f.Source)))
	if f.ServerVersion > 0 {
		w.line("- PostgreSQL server: " + ServerVersionText(f.ServerVersion))
	}
	if len(f.Tables) == 0 {
		return
	}
	// Rows, size and backfill estimates are only known from a live
	// database; their columns are left out when no table has them.
	known := false
	for _, t := range f.Tables {
		if t.Rows >= 0 || t.Bytes >= 0 || t.BackfillSeconds > 0 {
			known = true
		}
	}
	header := []string{"table", "batch key"}
	if known {
		header = append(header, "rows", "size", "backfill estimate")
	}
	header = append(header, "notes")
	w.blank()
	w.tableRow(header)
	w.tableRule(len(header))
	for _, t := range f.Tables {
		row := []string{code(t.Name), batchKeyText(f.Source, t.BatchKey)}
		if known {
			row = append(row, rowsText(t.Rows), BytesText(t.Bytes), DurationText(t.BackfillSeconds))
		}
		var notes []string
		if t.Partitioned {
			notes = append(notes, "partitioned")
		}
		if len(t.UpdateTriggers) > 0 {
			notes = append(notes, "UPDATE triggers: "+codeList(t.UpdateTriggers))
		}
		if len(t.DependentViews) > 0 {
			notes = append(notes, "views: "+codeList(t.DependentViews))
		}
		if len(notes) == 0 {
			notes = append(notes, "—")
		}
		row = append(row, strings.Join(notes, "; "))
		w.tableRow(row)
	}
}

func (w *mdWriter) mdSummary(p *Plan) {
	w.blank()
	w.line("## Summary")
	w.blank()
	if len(p.Phases) == 0 {
		w.line("The plan has no steps: there is nothing to do.")
		return
	}
	w.tableRow([]string{"phase", "deploy", "what it does", "locks", "risk"})
	w.tableRule(5)
	n := 0
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			n++
			deploy := fmt.Sprintf("%d · %s", n, d.Kind)
			if d.Kind == App {
				w.tableRow([]string{string(ph.Name), deploy, prose(d.Title), "—", "—"})
				continue
			}
			for _, s := range d.Steps {
				w.tableRow([]string{string(ph.Name), deploy, code(s.ID) + " " + prose(s.Summary), lockText(&s), Risk(&s)})
			}
		}
	}
}

func (w *mdWriter) mdDeploy(n, total int, d *Deploy) {
	w.blank()
	w.line(fmt.Sprintf("### Deploy %d of %d · %s · %s", n, total, d.Kind, prose(d.Title)))
	if d.Kind == App {
		w.blank()
		w.line("Done by you, not by cutover:")
		w.blank()
		for _, in := range d.Instructions {
			w.line("- [ ] " + prose(in))
		}
		return
	}
	if len(d.Instructions) > 0 {
		w.blank()
		for _, in := range d.Instructions {
			w.line("- " + prose(in))
		}
	}
	for si := range d.Steps {
		w.mdStep(&d.Steps[si])
	}
}

// mdStep writes one checklist item; its body is indented two spaces so it
// stays inside the list item when rendered.
func (w *mdWriter) mdStep(s *Step) {
	const in = "  "
	w.blank()
	w.line("- [ ] " + bold(s.ID) + " " + prose(s.Summary))
	w.blank()
	if s.Backfill != nil {
		w.line(in + backfillText(s.Backfill))
		w.blank()
	}
	w.fence(in, "sql", statementText(s.SQL))
	w.blank()
	tx := "runs in a transaction"
	if !s.Transactional {
		tx = "**must run outside a transaction block**"
	}
	w.line(fmt.Sprintf("%sLock: %s · %s · table impact: %s · risk: %s", in, lockText(s), tx, s.Rewrite, Risk(s)))
	if len(s.Hazards) > 0 {
		w.blank()
		w.line(in + "Hazards:")
		w.blank()
		for _, h := range s.Hazards {
			w.line(in + "- " + code(string(h.Type)) + " " + prose(h.Message))
		}
	}
	w.blank()
	if s.Irreversible {
		reason := s.IrreversibleReason
		if reason == "" {
			reason = "no reason given."
		}
		w.line(in + "**Irreversible:** " + prose(reason))
	} else {
		w.line(in + "Rollback:")
		w.blank()
		w.fence(in, "sql", statementText(s.Rollback))
	}
	if s.Gate != nil {
		w.blank()
		w.line(in + "Gate, must return 0 or true before going on: " + prose(s.Gate.Description))
		w.blank()
		w.fence(in, "sql", statementText(s.Gate.SQL))
	}
}

// Risk is a short label for how a step affects the running application,
// derived from its lock, table impact, hazards and reversibility: "low",
// "brief AE", "scan", "AE rewrite", "batched writes", "irreversible"...
// Several labels are joined with ", ".
func Risk(s *Step) string {
	var r []string
	reads, writes := s.Lock.Blocks()
	switch s.Rewrite {
	case ImpactRewrite:
		if reads {
			r = append(r, "AE rewrite")
		} else {
			r = append(r, "rewrite")
		}
	case ImpactScan:
		switch {
		case reads:
			r = append(r, "AE scan")
		case writes:
			r = append(r, "write-blocking scan")
		default:
			r = append(r, "scan")
		}
	case ImpactBatched:
		r = append(r, "batched writes")
	default:
		switch {
		case reads:
			r = append(r, "brief AE")
		case writes:
			r = append(r, "brief write block")
		}
	}
	for _, h := range s.Hazards {
		if strings.HasPrefix(h.Message, "rollback:") {
			// A risk of the step's rollback, not of running the step.
			continue
		}
		var label string
		switch h.Type {
		case HazardDataLoss:
			label = "data loss"
		case HazardCastFailure:
			label = "cast may fail"
		case HazardDeployBreakage:
			label = "breaks old release"
		case HazardFiresTriggers:
			label = "fires triggers"
		}
		if label != "" && !contains(r, label) {
			r = append(r, label)
		}
	}
	if s.Irreversible {
		r = append(r, "irreversible")
	}
	if len(r) == 0 {
		return "low"
	}
	return strings.Join(r, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func lockText(s *Step) string {
	if s.Lock == "" || s.Lock == LockNone {
		return "none"
	}
	if s.Table == "" {
		return string(s.Lock)
	}
	return string(s.Lock) + " on " + code(s.Table)
}

func backfillText(b *Backfill) string {
	var sb strings.Builder
	sb.WriteString("Batched: cutover runs this in short keyset batches")
	if len(b.Key) > 0 {
		sb.WriteString(" over " + code(strings.Join(b.Key, ", ")))
	} else {
		sb.WriteString(" over ctid ranges (no usable key)")
	}
	sb.WriteString("; each batch only touches rows where " + code(b.Where) + ".")
	if len(b.Triggers) > 0 {
		sb.WriteString(" Each batch fires " + codeList(b.Triggers) + ".")
	}
	sb.WriteString(" The single statement it amounts to:")
	return sb.String()
}

func sourceText(src string) string {
	if src == "" || src == "none" {
		return "no schema (offline, see the assumptions)"
	}
	return src
}

func batchKeyText(source string, key []string) string {
	if len(key) > 0 {
		return code(strings.Join(key, ", "))
	}
	if source == "" || source == "none" {
		return "unknown"
	}
	return "none (ctid ranges)"
}

func rowsText(n int64) string {
	if n < 0 {
		return "unknown"
	}
	return groupDigits(n)
}

// groupDigits writes 1234567 as 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// BytesText writes a size for people (1.5 GB); "unknown" when negative.
func BytesText(n int64) string {
	if n < 0 {
		return "unknown"
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	u := 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	if f < 10 {
		return fmt.Sprintf("%.1f %s", f, units[u])
	}
	return fmt.Sprintf("%.0f %s", f, units[u])
}

// DurationText writes an estimate in seconds for people (~3 min); "—" when
// not known (0).
func DurationText(sec float64) string {
	switch {
	case sec <= 0:
		return "—"
	case sec < 1:
		return "< 1 s"
	case sec < 90:
		return fmt.Sprintf("~%.0f s", sec)
	case sec < 90*60:
		return fmt.Sprintf("~%.0f min", sec/60)
	default:
		return fmt.Sprintf("~%.1f h", sec/3600)
	}
}

// ServerVersionText writes server_version_num 150004 as "15.4".
func ServerVersionText(v int) string {
	if v >= 100000 {
		return fmt.Sprintf("%d.%d", v/10000, v%10000)
	}
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

func countDeploys(p *Plan) (all, db, app int) {
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			all++
			if d.Kind == App {
				app++
			} else {
				db++
			}
		}
	}
	return
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// statementText ends SQL with a semicolon so it can be pasted into psql
// as is.
func statementText(sql string) string {
	sql = strings.TrimRight(sql, " \t\r\n")
	if !strings.HasSuffix(sql, ";") {
		sql += ";"
	}
	return sql
}

// mdWriter accumulates lines.
type mdWriter struct {
	sb strings.Builder
}

func (w *mdWriter) line(s string) {
	w.sb.WriteString(strings.TrimRight(s, " "))
	w.sb.WriteByte('\n')
}

// blank writes an empty line unless the output is empty or already ends
// with one.
func (w *mdWriter) blank() {
	s := w.sb.String()
	if s == "" || strings.HasSuffix(s, "\n\n") {
		return
	}
	w.sb.WriteByte('\n')
}

func (w *mdWriter) String() string { return w.sb.String() }

// fence writes body in a fenced code block indented by indent. The fence
// is longer than any backtick run in the body, so no content can close it.
func (w *mdWriter) fence(indent, lang, body string) {
	f := strings.Repeat("`", max(3, longestRun(body, '`')+1))
	w.line(indent + f + lang)
	for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		if l == "" {
			w.sb.WriteByte('\n')
			continue
		}
		w.line(indent + l)
	}
	w.line(indent + f)
}

func (w *mdWriter) tableRow(cells []string) {
	var sb strings.Builder
	sb.WriteString("|")
	for _, c := range cells {
		sb.WriteString(" " + cell(c) + " |")
	}
	w.line(sb.String())
}

func (w *mdWriter) tableRule(n int) {
	w.line("|" + strings.Repeat("---|", n))
}

// cell makes text safe inside a table cell: one line, pipes escaped (GitHub
// honours \| even inside code spans).
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func longestRun(s string, c rune) int {
	best, cur := 0, 0
	for _, r := range s {
		if r == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}

// code writes s as an inline code span, with delimiters longer than any
// backtick run inside it.
func code(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	n := longestRun(s, '`')
	d := strings.Repeat("`", n+1)
	if n > 0 || strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return d + " " + s + " " + d
	}
	return d + s + d
}

func codeList(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

func bold(s string) string { return "**" + escapeInline(s) + "**" }

// prose makes planner text (which may quote SQL from the input, and may use
// `code spans` on purpose) safe as one line of Markdown: balanced code
// spans are kept verbatim, and outside them the characters that would
// start emphasis, links, HTML or escapes are backslash-escaped. Underscores
// inside words (email_address) are left alone, as GitHub does not treat
// them as emphasis, so the text stays readable in a terminal.
func prose(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if strings.Count(s, "`")%2 != 0 {
		return escapeLineStart(escapeInline(s))
	}
	var sb strings.Builder
	for i, part := range strings.Split(s, "`") {
		if i%2 == 1 {
			sb.WriteString("`" + part + "`")
			continue
		}
		sb.WriteString(escapeInline(part))
	}
	return escapeLineStart(sb.String())
}

// escapeInline backslash-escapes Markdown punctuation that could change
// the rendering of plain text.
func escapeInline(s string) string {
	var sb strings.Builder
	prev := ' '
	for i, r := range s {
		switch r {
		case '\\', '*', '<', '[', ']', '`':
			sb.WriteByte('\\')
		case '_':
			// A run of underscores inside a word (email_address,
			// id__new) can neither open nor close emphasis.
			rest := strings.TrimLeft(s[i:], "_")
			next, _ := utf8.DecodeRuneInString(rest)
			if !wordRune(prev) || !wordRune(next) {
				sb.WriteByte('\\')
			}
		}
		sb.WriteRune(r)
		if r != '_' {
			prev = r
		}
	}
	return sb.String()
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// escapeLineStart escapes a leading character that would make the line a
// heading, quote or list.
func escapeLineStart(s string) string {
	if s != "" && strings.ContainsRune("#>+-=", rune(s[0])) {
		return `\` + s
	}
	return s
}
