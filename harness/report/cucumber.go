package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// mergeCucumber merges the cucumber JSON (godog's formatter: an array of
// features, each with its scenarios as elements) of every directory, when
// every one has it: a feature split across shards becomes one feature
// again, its elements in line order. Nil when some directory has none.
func mergeCucumber(dirs []string) ([]byte, error) {
	if len(dirs) == 0 {
		return nil, nil
	}
	var features []map[string]json.RawMessage
	byURI := map[string]int{}
	for _, dir := range dirs {
		data, err := readCucumber(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, CucumberFile)
		var top []map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			return nil, fmt.Errorf("read %s: not cucumber JSON (an array of features): %w", path, err)
		}
		for i, f := range top {
			var uri string
			if raw, ok := f["uri"]; ok {
				if err := json.Unmarshal(raw, &uri); err != nil {
					return nil, fmt.Errorf("read %s: feature %d: uri: %w", path, i, err)
				}
			}
			at, ok := byURI[uri]
			if !ok || uri == "" {
				byURI[uri] = len(features)
				features = append(features, f)
				continue
			}
			elems, err := joinElements(features[at]["elements"], f["elements"])
			if err != nil {
				return nil, fmt.Errorf("read %s: feature %s: %w", path, uri, err)
			}
			features[at]["elements"] = elems
		}
	}
	if features == nil {
		features = []map[string]json.RawMessage{}
	}
	out, err := json.MarshalIndent(features, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func readCucumber(dir string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	defer root.Close()
	if _, err := root.Lstat(CucumberFile); err != nil {
		return nil, err
	}
	return readRecord(root, dir, CucumberFile)
}

// joinElements appends b's elements to a's, ordered by line.
func joinElements(a, b json.RawMessage) (json.RawMessage, error) {
	var all []json.RawMessage
	for _, raw := range []json.RawMessage{a, b} {
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, fmt.Errorf("elements: %w", err)
		}
		all = append(all, elems...)
	}
	line := func(raw json.RawMessage) int {
		var e struct {
			Line int `json:"line"`
		}
		json.Unmarshal(raw, &e) // an element without a line sorts first
		return e.Line
	}
	sort.SliceStable(all, func(i, j int) bool { return line(all[i]) < line(all[j]) })
	return json.Marshal(all)
}
