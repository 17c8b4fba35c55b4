package image

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// baseImages lists the images a Dockerfile builds on, in order and once
// each, read with buildkit's own parser (continuation lines, comments,
// heredocs, the escape directive). As docker does, each FROM is expanded
// with the ARGs declared before the first FROM, the build's arguments
// overriding their defaults. Left out: scratch, earlier stages, and the
// stages after target, which a build of target does not run.
func baseImages(dockerfile string, args map[string]string, target string) ([]string, error) {
	res, err := parser.Parse(strings.NewReader(dockerfile))
	if err != nil {
		var loc *parser.LocationError
		if errors.As(err, &loc) && len(loc.Locations) > 0 {
			return nil, fmt.Errorf("line %d: %w", line(loc.Locations[0]), err)
		}
		return nil, err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, err // names the line
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM instruction")
	}
	lex := shell.NewLex(res.EscapeToken)
	global, err := globalArgs(lex, metaArgs, args)
	if err != nil {
		return nil, err
	}
	last := len(stages) - 1
	if target != "" {
		last = slices.IndexFunc(stages, func(s instructions.Stage) bool { return strings.EqualFold(s.Name, target) })
		if last < 0 {
			return nil, fmt.Errorf("target stage %q not found", target)
		}
	}
	seenStages := map[string]bool{}
	var images []string
	for _, st := range stages[:last+1] {
		name, _, err := lex.ProcessWord(st.BaseName, global)
		if err != nil {
			return nil, fmt.Errorf("line %d: FROM %s: %w", line(st.Location), st.BaseName, err)
		}
		switch {
		case name == "":
			return nil, fmt.Errorf("line %d: FROM %s: the base image name is blank (an ARG without a value?)", line(st.Location), st.BaseName)
		case name == "scratch", seenStages[strings.ToLower(name)], slices.Contains(images, name):
		default:
			images = append(images, name)
		}
		if st.Name != "" {
			seenStages[st.Name] = true // instructions.Parse lower-cases stage names
		}
	}
	return images, nil
}

// globalArgs evaluates the ARGs before the first FROM in order: a build
// argument replaces a declared ARG's default; a default may use the ARGs
// before it. Build arguments that no ARG declares are not seen.
func globalArgs(lex *shell.Lex, metaArgs []instructions.ArgCommand, buildArgs map[string]string) (argEnv, error) {
	env := argEnv{}
	for _, cmd := range metaArgs {
		for _, kv := range cmd.Args {
			if v, ok := buildArgs[kv.Key]; ok {
				env[kv.Key] = v
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, env)
			if err != nil {
				return nil, fmt.Errorf("line %d: ARG %s: %w", line(cmd.Location()), kv.Key, err)
			}
			env[kv.Key] = v
		}
	}
	return env, nil
}

// argEnv is the ARG values a FROM line sees (shell.EnvGetter).
type argEnv map[string]string

func (e argEnv) Get(key string) (string, bool) {
	v, ok := e[key]
	return v, ok
}

func (e argEnv) Keys() []string { return slices.Sorted(maps.Keys(e)) }

// line is the first line of an instruction's location, 1-based.
func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}
