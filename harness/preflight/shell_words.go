package preflight

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// varDef is a variable the script sets once, at its top level, to a value
// the parser can read: uses after it may be followed.
type varDef struct {
	value string
	end   uint // offset where the assignment ends
}

// aliasDef is one `alias NAME=VALUE` of a script.
type aliasDef struct {
	value string
	ok    bool // value is known (not built at run time)
	end   uint // offset where the definition ends; 0 for an inherited one
}

// alias is the definition of name in force at a command's position: the
// last one before it in the script, or one the script inherited.
func (sc *script) alias(name string, at syntax.Pos) (aliasDef, bool) {
	var found aliasDef
	ok := false
	for _, d := range sc.aliases[name] {
		if d.end <= at.Offset() {
			found, ok = d, true
		}
	}
	return found, ok
}

// collectVars finds the variables a script sets exactly once, at its top
// level, to a literal (or to other such variables). A variable set twice,
// in a branch or a function, read, or a loop variable is not followed.
// It also collects the script's aliases (alias NAME=VALUE anywhere), after
// those it inherits.
func (sc *script) collectVars(f *syntax.File, inherited map[string][]aliasDef) map[string]varDef {
	count := map[string]int{}
	sc.aliases = map[string][]aliasDef{}
	for name, ds := range inherited {
		for _, d := range ds {
			d.end = 0
			sc.aliases[name] = append(sc.aliases[name], d)
		}
	}
	var defs []*syntax.CallExpr
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Assign:
			if n.Name != nil {
				count[n.Name.Value]++
			}
		case *syntax.WordIter:
			count[n.Name.Value] += 2
		case *syntax.CallExpr:
			if len(n.Args) > 0 {
				switch n.Args[0].Lit() {
				case "read", "mapfile", "readarray", "getopts", "printf", "unset":
					for _, w := range n.Args[1:] {
						count[w.Lit()] += 2
					}
				case "alias":
					defs = append(defs, n)
				}
			}
		}
		return true
	})
	sc.vars = map[string]varDef{}
	for _, s := range f.Stmts {
		var as []*syntax.Assign
		switch cmd := s.Cmd.(type) {
		case *syntax.CallExpr:
			if len(cmd.Args) == 0 {
				as = cmd.Assigns
			}
		case *syntax.DeclClause:
			as = cmd.Args
		}
		for _, a := range as {
			if a.Name == nil || a.Value == nil || a.Append || a.Index != nil || a.Array != nil || count[a.Name.Value] != 1 {
				continue
			}
			if v, ok := sc.text(a.Value); ok {
				sc.vars[a.Name.Value] = varDef{value: v, end: a.End().Offset()}
			}
		}
	}
	for _, ce := range defs {
		for _, w := range ce.Args[1:] {
			s, ok := sc.text(w)
			name, value, eq := strings.Cut(s, "=")
			if !eq || name == "" || strings.HasPrefix(name, "-") {
				continue // alias NAME prints it; alias -p
			}
			sc.aliases[name] = append(sc.aliases[name], aliasDef{value: value, ok: ok, end: ce.End().Offset()})
		}
	}
	return sc.vars
}

// text is what a word expands to, with the variables collectVars followed;
// ok is false when part of it is only known at run time (text then holds
// what comes before that part). Globs are left as written.
func (sc *script) text(w *syntax.Word) (string, bool) {
	if w == nil {
		return "", false
	}
	if len(w.Parts) == 1 {
		if l, ok := w.Parts[0].(*syntax.Lit); ok && strings.IndexByte(l.Value, '\\') < 0 {
			return l.Value, true
		}
	}
	var b strings.Builder
	ok := sc.parts(&b, w.Parts, false)
	return b.String(), ok
}

func (sc *script) parts(b *strings.Builder, parts []syntax.WordPart, quoted bool) bool {
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescape(p.Value, quoted))
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			if !sc.parts(b, p.Parts, true) {
				return false
			}
		case *syntax.ParamExp:
			v, ok := sc.param(p)
			if !ok || (!quoted && strings.ContainsAny(v, " \t\n*?[")) {
				return false // unquoted: split and globbed at run time
			}
			b.WriteString(v)
		default:
			return false
		}
	}
	return true
}

// param resolves $NAME or ${NAME} set earlier by the script.
func (sc *script) param(p *syntax.ParamExp) (string, bool) {
	if p.Param == nil || p.Excl || p.Length || p.Index != nil || p.Slice != nil || p.Repl != nil || p.Exp != nil || p.Names != 0 {
		return "", false
	}
	d, ok := sc.vars[p.Param.Value]
	if !ok || p.Pos().Offset() < d.end {
		return "", false
	}
	return d.value, true
}

// unescape removes the backslashes the shell removes: every one outside
// quotes, and before $ ` " \ inside double quotes; a backslash-newline
// joins lines.
func unescape(s string, quoted bool) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		next := s[i+1]
		switch {
		case next == '\n':
			i++
		case !quoted || strings.IndexByte("$`\"\\", next) >= 0:
			b.WriteByte(next)
			i++
		default:
			b.WriteByte('\\')
		}
	}
	return b.String()
}

// raw is the script's source between two positions.
func (sc *script) raw(from, to syntax.Pos) string {
	a, z := from.Offset(), to.Offset()
	if z > uint(len(sc.src)) {
		z = uint(len(sc.src))
	}
	if a > z {
		return ""
	}
	return string(sc.src[a:z])
}

// wordSource is a word as written.
func (sc *script) wordSource(w *syntax.Word) string {
	return sc.partsSource(w.Parts)
}

// partsSource is word parts as written. (A heredoc body's last literal
// ends past its delimiter, so literals use their value.)
func (sc *script) partsSource(parts []syntax.WordPart) string {
	var b strings.Builder
	for _, p := range parts {
		if l, ok := p.(*syntax.Lit); ok {
			b.WriteString(l.Value)
			continue
		}
		b.WriteString(sc.raw(p.Pos(), p.End()))
	}
	return b.String()
}

// scriptText is the script a shell runs from a word (bash -c WORD): the
// word with its quotes removed and any run-time expansion kept as written,
// since the inner shell sees it in that place. seen is false when the
// word is nothing but expansions ("$CMD"): then nothing of it is visible.
func (sc *script) scriptText(w *syntax.Word) (text string, seen bool) {
	var b strings.Builder
	sc.scriptParts(&b, w.Parts, false, &seen)
	return b.String(), seen
}

func (sc *script) scriptParts(b *strings.Builder, parts []syntax.WordPart, quoted bool, seen *bool) {
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			v := unescape(p.Value, quoted)
			if strings.TrimSpace(v) != "" {
				*seen = true
			}
			b.WriteString(v)
		case *syntax.SglQuoted:
			if strings.TrimSpace(p.Value) != "" {
				*seen = true
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			sc.scriptParts(b, p.Parts, true, seen)
		case *syntax.ParamExp:
			if v, ok := sc.param(p); ok {
				*seen = *seen || strings.TrimSpace(v) != ""
				b.WriteString(v)
				continue
			}
			b.WriteString(sc.raw(p.Pos(), p.End()))
		default:
			b.WriteString(sc.raw(p.Pos(), p.End()))
		}
	}
}

// optSpec says which options of a command take a value.
type optSpec struct {
	short string   // short options that take a value ("u" for -u USER)
	long  []string // long options that take a value, without "--"
	plus  bool     // +x is an option too (shells)
}

func (o optSpec) valued(long string) bool {
	for _, l := range o.long {
		if l == long {
			return true
		}
	}
	return false
}

// shellArg is one option or positional argument of a command.
type shellArg struct {
	opt  string       // "-u" or "--user"; "" for a positional
	val  string       // the option's value or the positional's text
	ok   bool         // val is known (not built at run time)
	word *syntax.Word // the word holding val; nil for a flag
	at   int          // index in the command's words of word (or of the flag)
}

// args splits words (after the command name) into options and positionals.
// With first, option parsing stops at the first positional (a wrapper's
// command and its own options follow).
func (sc *script) args(words []*syntax.Word, o optSpec, first bool) []shellArg {
	var out []shellArg
	opts := true
	for i := 0; i < len(words); i++ {
		w := words[i]
		s, ok := sc.text(w)
		isOpt := opts && ok && len(s) > 1 && (s[0] == '-' || (o.plus && s[0] == '+'))
		if !isOpt {
			out = append(out, shellArg{val: s, ok: ok, word: w, at: i})
			if first {
				opts = false
			}
			continue
		}
		if s == "--" {
			opts = false
			continue
		}
		if strings.HasPrefix(s, "--") {
			name, val, eq := strings.Cut(s[2:], "=")
			a := shellArg{opt: "--" + name, at: i}
			switch {
			case eq:
				a.val, a.ok, a.word = val, true, w
			case o.valued(name) && i+1 < len(words):
				i++
				a.word = words[i]
				a.val, a.ok = sc.text(a.word)
				a.at = i
			}
			out = append(out, a)
			continue
		}
		for j := 1; j < len(s); j++ {
			a := shellArg{opt: string(s[0]) + s[j:j+1], at: i}
			if strings.IndexByte(o.short, s[j]) >= 0 {
				if j+1 < len(s) {
					a.val, a.ok, a.word = s[j+1:], true, w
				} else if i+1 < len(words) {
					i++
					a.word = words[i]
					a.val, a.ok = sc.text(a.word)
					a.at = i
				}
				out = append(out, a)
				break
			}
			out = append(out, a)
		}
	}
	return out
}

// word is one word as a positional argument.
func (sc *script) word(w *syntax.Word) shellArg {
	v, ok := sc.text(w)
	return shellArg{val: v, ok: ok, word: w}
}

// positionals are the positional arguments among args.
func positionals(as []shellArg) []shellArg {
	var out []shellArg
	for _, a := range as {
		if a.opt == "" {
			out = append(out, a)
		}
	}
	return out
}

// option is the last value of any of the named options, and whether one
// was given.
func lastOpt(as []shellArg, names ...string) (shellArg, bool) {
	var found shellArg
	var ok bool
	for _, a := range as {
		for _, n := range names {
			if a.opt == n {
				found, ok = a, true
			}
		}
	}
	return found, ok
}
