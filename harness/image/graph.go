package image

import (
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Kind is how an image of a graph is made.
type Kind string

// Kinds.
const (
	// Existing: found in the engine, pulled, or (DebianBase) bootstrapped
	// with mmdebstrap.
	Existing Kind = "existing"
	// Dockerfile: built by the engine from a Dockerfile (Spec.Build or
	// Spec.Files).
	Dockerfile Kind = "dockerfile"
	// GoPack: Go programs compiled here and packed onto a base.
	GoPack Kind = "go"
)

// Node is one image of a graph and the images it is made from.
type Node struct {
	Ref    string
	Kind   Kind
	Needs  []string // the keys of the nodes made first (Key)
	Origin string

	build      *Build // Dockerfile: from a directory
	files      fs.FS  // Dockerfile: from memory, "Dockerfile" at its root
	dockerfile string // Dockerfile: its text
	bases      []string
	gobins     []GoBinary
}

// Key names a node in its graph: an image rehearse makes by its ref; an
// existing one as "existing REF" (it may also be the base that another
// node of the same ref builds on, as a Spec without a build does).
func (n Node) Key() string {
	if n.Kind == Existing {
		return existingKey(n.Ref)
	}
	return n.Ref
}

func existingKey(ref string) string { return "existing " + ref }

// Graph is every image specs need, each once, dependencies first:
// the base images a Dockerfile starts FROM (the Debian base, or an image
// another spec makes), the Dockerfile stage of an image with Go programs,
// and the base of Go programs packed without a build. Images that do not
// need each other are independent: Ensure makes them concurrently.
func Graph(specs ...Spec) ([]Node, error) {
	made := map[string]bool{} // refs some spec makes
	for _, s := range specs {
		switch {
		case len(s.Go) > 0 && (s.Build != nil || s.Files != nil):
			made[s.Ref], made[baseTag(s.Ref)] = true, true
		case s.Build != nil || s.Files != nil || len(s.Go) > 0:
			made[s.Ref] = true
		}
	}
	need := func(ref string) string {
		if made[ref] {
			return ref
		}
		return existingKey(ref)
	}
	var nodes []Node
	index := map[string]int{}
	add := func(n Node) error {
		i, ok := index[n.Key()]
		switch {
		case !ok:
			index[n.Key()] = len(nodes)
			nodes = append(nodes, n)
		case !nodes[i].same(n):
			return fmt.Errorf("%s makes %s too, differently: one ref, two builds", nodes[i].Origin, n.Ref)
		}
		return nil
	}
	existing := func(ref, origin string) { add(Node{Ref: ref, Kind: Existing, Origin: origin}) } // the same each time
	dockerfileNode := func(s Spec, ref string) error {
		n := Node{Ref: ref, Kind: Dockerfile, Origin: s.Origin, build: s.Build, files: s.Files}
		var args map[string]string
		var target string
		if s.Build != nil {
			text, err := dockerfileText(*s.Build)
			if err != nil {
				return err
			}
			n.dockerfile, args, target = text, s.Build.Args, s.Build.Target
		} else {
			data, err := fs.ReadFile(s.Files, "Dockerfile")
			if err != nil {
				return fmt.Errorf("build context: %w", err)
			}
			n.dockerfile = string(data)
		}
		bases, err := baseImages(n.dockerfile, args, target)
		if err != nil {
			return fmt.Errorf("%s: %w", n.dockerfileName(), err)
		}
		n.bases = bases
		for _, base := range bases {
			if base == ref {
				return fmt.Errorf("%s: FROM %s: the image builds on itself", n.dockerfileName(), base)
			}
			if !made[base] {
				existing(base, s.Origin)
			}
			n.Needs = append(n.Needs, need(base))
		}
		return add(n)
	}
	for _, s := range specs {
		fail := func(err error) ([]Node, error) {
			return nil, fmt.Errorf("%s: image %s: %w", s.Origin, s.Ref, err)
		}
		if s.Ref == "" {
			return fail(fmt.Errorf("empty ref"))
		}
		if s.Build != nil && s.Files != nil {
			return fail(fmt.Errorf("both a build directory and build files"))
		}
		switch {
		case s.Build == nil && s.Files == nil && len(s.Go) == 0:
			if !made[s.Ref] {
				existing(s.Ref, s.Origin)
			}
		case len(s.Go) == 0:
			if err := dockerfileNode(s, s.Ref); err != nil {
				return fail(err)
			}
		default:
			base := s.Base
			if s.Build != nil || s.Files != nil {
				base = baseTag(s.Ref)
				if err := dockerfileNode(s, base); err != nil {
					return fail(err)
				}
			} else if base == "" {
				return fail(fmt.Errorf("go programs need a build: section or a base image"))
			} else if !made[base] {
				existing(base, s.Origin)
			}
			if err := add(Node{Ref: s.Ref, Kind: GoPack, Origin: s.Origin, Needs: []string{need(base)}, gobins: s.Go}); err != nil {
				return fail(err)
			}
		}
	}
	return sortGraph(nodes, index)
}

// sortGraph orders nodes so that each comes after what it needs, keeping
// the given order otherwise, and refuses a cycle.
func sortGraph(nodes []Node, index map[string]int) ([]Node, error) {
	const (
		unseen = iota
		visiting
		placed
	)
	state := make([]int, len(nodes))
	out := make([]Node, 0, len(nodes))
	var visit func(i int, path []string) error
	visit = func(i int, path []string) error {
		path = append(path, nodes[i].Ref)
		switch state[i] {
		case placed:
			return nil
		case visiting:
			return fmt.Errorf("%s: image %s: images build on each other: %s", nodes[i].Origin, nodes[i].Ref, strings.Join(path, " → "))
		}
		state[i] = visiting
		for _, k := range nodes[i].Needs {
			if err := visit(index[k], path); err != nil {
				return err
			}
		}
		state[i] = placed
		out = append(out, nodes[i])
		return nil
	}
	for i := range nodes {
		if err := visit(i, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (n Node) dockerfileName() string {
	switch {
	case n.files != nil:
		return "Dockerfile (built in)"
	case n.build != nil:
		return dockerfileName(*n.build)
	}
	return "Dockerfile"
}

// fromLine matches a FROM instruction up to its image name.
var fromLine = regexp.MustCompile(`(?i)^(\s*FROM\s+(?:--\S+\s+)*)(\S+)`)

// rewriteFrom replaces the image names of FROM lines by rename's values:
// how a builder with a private prefix builds on its own base images.
func rewriteFrom(dockerfile string, rename map[string]string) string {
	lines := strings.Split(dockerfile, "\n")
	for i, l := range lines {
		m := fromLine.FindStringSubmatchIndex(l)
		if m == nil {
			continue
		}
		if to, ok := rename[l[m[4]:m[5]]]; ok {
			lines[i] = l[:m[4]] + to + l[m[5]:]
		}
	}
	return strings.Join(lines, "\n")
}

// renameBases is n's Dockerfile with its bases renamed (rewriteFrom),
// checked by parsing it again as Graph did: a base still named as before
// (a FROM the rewrite missed, such as one built from an ARG) would build
// on the shared image instead of the builder's own.
func (n Node) renameBases(rename map[string]string) (string, error) {
	dockerfile := rewriteFrom(n.dockerfile, rename)
	var args map[string]string
	var target string
	if n.build != nil {
		args, target = n.build.Args, n.build.Target
	}
	bases, err := baseImages(dockerfile, args, target)
	if err != nil {
		return "", fmt.Errorf("%s, its FROM lines renamed: %w", n.dockerfileName(), err)
	}
	for _, base := range bases {
		if to, ok := rename[base]; ok {
			return "", fmt.Errorf("%s: FROM %s could not be renamed to %s (only a FROM naming the image itself can be)", n.dockerfileName(), base, to)
		}
	}
	return dockerfile, nil
}

// same reports whether two nodes of one key make the image the same way.
func (n Node) same(o Node) bool {
	return n.Kind == o.Kind && n.dockerfile == o.dockerfile && slices.Equal(n.Needs, o.Needs) &&
		reflect.DeepEqual(n.build, o.build) && reflect.DeepEqual(n.files, o.files) &&
		slices.Equal(n.gobins, o.gobins)
}

// needsOf is the refs of what n needs, for people.
func (n Node) needsOf(nodes map[string]*Node) []string {
	var refs []string
	for _, k := range n.Needs {
		refs = append(refs, nodes[k].Ref)
	}
	return slices.Compact(refs)
}
