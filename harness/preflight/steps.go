package preflight

import (
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"mvdan.cc/sh/v3/syntax"

	"github.com/rehearse/rehearse/harness/upgrade"
)

// stepCommand is one command of the manifest, where upgrade.yaml says it.
type stepCommand struct {
	List    string // steps, rollback or cleanup
	Name    string
	Service string
	Command string
	Line    int // the line in upgrade.yaml where the command's text starts (0: not found)
}

// stepCommands lists every command the manifest runs, located by reading
// upgrade.yaml again as a YAML tree (Manifest keeps no lines). A manifest
// Open accepted decodes here too; a line not found is 0.
func stepCommands(m *upgrade.Manifest, src []byte) []stepCommand {
	lines := commandLines(src)
	var out []stepCommand
	for _, l := range []struct {
		key   string
		steps []upgrade.StepSpec
	}{{"steps", m.Steps}, {"rollback", m.Rollback}, {"cleanup", m.Cleanup}} {
		for _, s := range l.steps {
			out = append(out, stepCommand{List: l.key, Name: s.Name, Service: s.Service, Command: s.Command, Line: lines[l.key+"\x00"+s.Name]})
		}
	}
	return out
}

// commandLines maps "list\x00step name" to the line where the step's
// command text starts: a block scalar (| or >) starts on the line after
// its indicator.
func commandLines(src []byte) map[string]int {
	out := map[string]int{}
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return out
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, list := top.Content[i].Value, top.Content[i+1]
		if list.Kind != yaml.SequenceNode {
			continue
		}
		for _, step := range list.Content {
			if step.Kind != yaml.MappingNode {
				continue
			}
			var name string
			var cmd *yaml.Node
			for j := 0; j+1 < len(step.Content); j += 2 {
				switch step.Content[j].Value {
				case "name":
					name = step.Content[j+1].Value
				case "command":
					cmd = step.Content[j+1]
				}
			}
			if cmd == nil {
				continue
			}
			line := cmd.Line
			if cmd.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				line++
			}
			out[key+"\x00"+name] = line
		}
	}
	return out
}

// psqlSingleTransaction lists the package's .sql files a command runs
// with psql -1 (--single-transaction): psql wraps each in one transaction,
// as CheckSQLWith's WithTransaction judges it. The file is psql's -f FILE,
// -fFILE, --file FILE, --file=FILE or its < redirection.
func psqlSingleTransaction(cmd string, have map[string]bool) []string {
	f, err := syntax.NewParser().Parse(strings.NewReader(cmd), "")
	if err != nil {
		return nil
	}
	var out []string
	add := func(w string) {
		if p := path.Clean(w); w != "" && !path.IsAbs(w) && have[p] && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		st, ok := n.(*syntax.Stmt)
		if !ok {
			return true
		}
		call, ok := st.Cmd.(*syntax.CallExpr)
		if !ok {
			return true
		}
		args := make([]string, len(call.Args))
		for i, w := range call.Args {
			args[i] = w.Lit()
		}
		at := slices.IndexFunc(args, func(a string) bool { return path.Base(a) == "psql" })
		if at < 0 {
			return true
		}
		single := false
		var files []string
		for i := at + 1; i < len(args); i++ {
			a := args[i]
			switch {
			case a == "--single-transaction":
				single = true
			case a == "-f" || a == "--file":
				if i+1 < len(args) {
					files = append(files, args[i+1])
					i++
				}
			case strings.HasPrefix(a, "--file="):
				files = append(files, strings.TrimPrefix(a, "--file="))
			case len(a) > 1 && a[0] == '-' && a[1] != '-':
				// Clustered short options: -1, -1f FILE, -X1ffile.
				for j := 1; j < len(a); j++ {
					if a[j] == '1' {
						single = true
					}
					if !strings.ContainsRune(psqlArgOpts, rune(a[j])) {
						continue
					}
					value := a[j+1:] // the rest of the word is the option's value, or the next word
					if value == "" && i+1 < len(args) {
						i++
						value = args[i]
					}
					if a[j] == 'f' {
						files = append(files, value)
					}
					break
				}
			}
		}
		for _, r := range st.Redirs {
			if r.Op == syntax.RdrIn && r.Word != nil {
				files = append(files, r.Word.Lit())
			}
		}
		if single {
			for _, w := range files {
				add(w)
			}
		}
		return true
	})
	return out
}

// psqlArgOpts are psql's short options that take a value.
const psqlArgOpts = "cdfhLoPpRTUvF"

// runners are commands whose first operand is a script they run.
var runners = []string{"sh", "bash", "dash", "ash", "ksh", "mksh", "source", ".", "exec", "sudo", "env", "nohup", "timeout"}

// runFiles lists the package files a command runs, as literal words the
// parser reads: the command name itself (./post-install.sh,
// scripts/migrate) or the first operand of a shell or runner (sh
// install.sh, sudo scripts/x, bash -e x.sh). have holds the package's
// text files. Words the parser cannot read literally are not guessed.
func runFiles(cmd string, have map[string]bool) []string {
	f, err := syntax.NewParser().Parse(strings.NewReader(cmd), "")
	if err != nil {
		return nil // CheckScript reports the parse error
	}
	var out []string
	pkgPath := func(w *syntax.Word) (string, bool) {
		lit := w.Lit()
		if lit == "" || path.IsAbs(lit) {
			return "", false
		}
		p := path.Clean(lit)
		return p, have[p]
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		for _, w := range call.Args {
			if p, ok := pkgPath(w); ok {
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
				break
			}
			lit := w.Lit()
			if !slices.Contains(runners, path.Base(lit)) && !strings.HasPrefix(lit, "-") && !strings.Contains(lit, "=") {
				break // a command that is not a runner: its operands are its own
			}
		}
		return true
	})
	return out
}
