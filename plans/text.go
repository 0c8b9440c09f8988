package plans

import (
	"fmt"
	"strings"
)

// Text renders the plan compactly for a terminal: the input, warnings and
// assumptions, then each phase with its deploys; for each db step its id,
// summary, lock, risk and SQL (indented), for each application release its
// instructions. Rollbacks and gates are named, not printed: the Markdown and
// JSON formats carry them in full. The output is a pure function of the plan.
func Text(p *Plan) string {
	var sb strings.Builder
	line := func(indent int, s string) {
		sb.WriteString(strings.Repeat("  ", indent))
		sb.WriteString(strings.TrimRight(s, " "))
		sb.WriteByte('\n')
	}
	block := func(indent int, body string) {
		for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
			if strings.TrimSpace(l) == "" {
				sb.WriteByte('\n')
				continue
			}
			line(indent, l)
		}
	}

	nDeploys, nDB, nApp := countDeploys(p)
	line(0, fmt.Sprintf("cutover plan: %s in %s (%d database, %d application)",
		plural(nDeploys, "deploy"), plural(len(p.Phases), "phase"), nDB, nApp))
	line(1, "planned against: "+sourceText(p.Facts.Source))
	line(0, "")
	line(0, "input:")
	block(1, strings.TrimSpace(p.Input))
	if len(p.Warnings) > 0 {
		line(0, "")
		line(0, "warnings:")
		for _, w := range p.Warnings {
			line(1, "! "+oneLine(w))
		}
	}
	if len(p.Assumptions) > 0 {
		line(0, "")
		line(0, "assumptions:")
		for _, a := range p.Assumptions {
			line(1, "- "+oneLine(a))
		}
	}

	n := 0
	for _, ph := range p.Phases {
		line(0, "")
		line(0, strings.ToUpper(string(ph.Name)))
		if ph.Rollback != "" {
			line(1, "rollback: "+oneLine(ph.Rollback))
		}
		for _, d := range ph.Deploys {
			n++
			line(0, "")
			line(1, fmt.Sprintf("[%d/%d] %s: %s", n, nDeploys, d.Kind, oneLine(d.Title)))
			if d.Kind == App {
				for _, in := range d.Instructions {
					line(2, "[ ] "+oneLine(in))
				}
				continue
			}
			for si := range d.Steps {
				s := &d.Steps[si]
				line(2, s.ID+"  "+oneLine(s.Summary))
				attrs := []string{"lock " + textLock(s), "impact " + string(s.Rewrite), "risk " + Risk(s)}
				if !s.Transactional {
					attrs = append(attrs, "outside a transaction")
				}
				line(3, strings.Join(attrs, " · "))
				block(4, statementText(s.SQL))
				if s.Irreversible {
					line(3, "irreversible: "+oneLine(s.IrreversibleReason))
				}
				if s.Gate != nil {
					line(3, "gate: "+oneLine(s.Gate.Description))
				}
			}
		}
	}
	return sb.String()
}

func textLock(s *Step) string {
	if s.Lock == "" || s.Lock == LockNone {
		return "none"
	}
	if s.Table == "" {
		return string(s.Lock)
	}
	return string(s.Lock) + " on " + s.Table
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
