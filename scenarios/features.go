package scenarios

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	gherkin "github.com/cucumber/gherkin/go/v42"
	messages "github.com/cucumber/messages/go/v34"
)

// FeatureError is a feature file that cannot be parsed.
type FeatureError struct {
	File string
	Err  error
}

func (e *FeatureError) Error() string { return e.File + ": " + e.Err.Error() }

// ExpandPaths turns files and directories into the feature files below them.
func ExpandPaths(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".feature") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	return files, nil
}

// CheckFeature parses a feature file and reports a syntax error with its line.
func CheckFeature(file string) error {
	_, err := parseFeature(file)
	return err
}

func parseFeature(file string) (*messages.GherkinDocument, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, &FeatureError{File: file, Err: err}
	}
	defer f.Close()
	doc, err := gherkin.ParseGherkinDocument(f, (&messages.Incrementing{}).NewId)
	if err != nil {
		// gherkin says "Parser errors:\n(3:5): expected: ..." — keep it on
		// one line per error, prefixed file:line.
		var lines []string
		for _, l := range strings.Split(err.Error(), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l == "Parser errors:" {
				continue
			}
			if strings.HasPrefix(l, "(") {
				if end := strings.Index(l, ")"); end > 0 {
					pos, msg := l[1:end], strings.TrimSpace(l[end+1:])
					line, _, _ := strings.Cut(pos, ":")
					l = fmt.Sprintf("%s:%s: %s", file, line, strings.TrimPrefix(msg, ": "))
				}
			}
			lines = append(lines, l)
		}
		return nil, &FeatureError{File: file, Err: fmt.Errorf("gherkin syntax error: %s", strings.Join(lines, "; "))}
	}
	return doc, nil
}
