package sandbox

import (
	"fmt"

	"go.yaml.in/yaml/v4"
)

// maxExpanded bounds the size of a document once its aliases and merges are
// expanded. The scan follows merges as the loader does; a few nested "<<" of
// aliases double the work at each level (a billion laughs), so a document
// past this bound is refused before anything walks it. Real compose files
// expand to a few thousand nodes.
const maxExpanded = 1_000_000

// checkShape refuses what would make the scan and the loader see different
// keys, and documents whose expansion has no sensible bound. The scan
// matches keys by their text, while the loader decodes them: an alias key
// (`*a : ...`, whose text is the anchor's name) or a tagged one
// (`!!binary ZW52X2ZpbGU=`, which decodes to env_file) would carry a key the
// scan never sees. So every mapping key must be a plain string (or the merge
// key "<<").
func checkShape(file string, root *yaml.Node) error {
	sizes := map[*yaml.Node]int{}
	var size func(n *yaml.Node) (int, error)
	size = func(n *yaml.Node) (int, error) {
		if n == nil {
			return 0, nil
		}
		if s, ok := sizes[n]; ok {
			return s, nil
		}
		sizes[n] = 1 // an alias cycle counts once; the loader refuses it
		total := 1
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := plainKey(file, n.Content[i]); err != nil {
					return 0, err
				}
			}
		}
		children := n.Content
		if n.Kind == yaml.AliasNode {
			children = []*yaml.Node{n.Alias}
		}
		for _, c := range children {
			s, err := size(c)
			if err != nil {
				return 0, err
			}
			if total += s; total > maxExpanded {
				return 0, &FileError{File: file, Line: n.Line,
					Msg: fmt.Sprintf("expands past %d nodes through its aliases and merges", maxExpanded)}
			}
		}
		sizes[n] = total
		return total, nil
	}
	_, err := size(root)
	return err
}

func plainKey(file string, k *yaml.Node) error {
	switch {
	case k.Kind == yaml.ScalarNode && k.Tag == "!!merge" && k.Value == "<<":
		return nil
	case k.Kind == yaml.ScalarNode && k.Tag == "!!str":
		return nil
	}
	what := "an alias"
	switch {
	case k.Kind == yaml.ScalarNode:
		what = fmt.Sprintf("tagged %s", k.Tag)
	case k.Kind != yaml.AliasNode:
		what = "not a scalar"
	}
	return &FileError{File: file, Line: k.Line, Err: ErrNotHonoured,
		Msg: fmt.Sprintf("mapping key %q is %s: keys must be plain strings in a rehearsal, so that the check before loading sees the keys the loader uses", k.Value, what)}
}
