package preflight

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Matrix is a deprecation matrix: the configuration keys a product
// deprecated and removed, by version, as pluto's deprecated-versions table
// lists Kubernetes APIs. A file holds it as
//
//	deprecated-keys:
//	  - key: payments_legacy_webhooks
//	    component: billing        # the package's name (upgrade.yaml name:); omitted: any package
//	    deprecated-in: "2.2"
//	    removed-in: "3.0"         # omitted: not removed yet
//	    replacement: webhooks registered with billing-api -register-webhook
type Matrix struct {
	Keys []Deprecation `yaml:"deprecated-keys"`
}

// Deprecation is one key of a Matrix. A target version at or past
// RemovedIn has removed the key (an error: the new version ignores or
// refuses it); at or past DeprecatedIn, it is deprecated (a warning).
type Deprecation struct {
	Key          string `yaml:"key"` // dotted for nested keys: [payments] url in an INI file is payments.url
	Component    string `yaml:"component"`
	DeprecatedIn string `yaml:"deprecated-in"`
	RemovedIn    string `yaml:"removed-in"`
	Replacement  string `yaml:"replacement"`
}

// MatrixFile is the deprecation matrix looked for beside a compose file
// when none is given (MatrixBeside).
const MatrixFile = "deprecations.yaml"

// MatrixBeside is the deprecation matrix beside a compose file
// (deprecations.yaml in its directory), "" when there is no such regular
// file: rehearse preflight and the preflight steps find it the same way.
func MatrixBeside(composeFile string) string {
	m := filepath.Join(filepath.Dir(composeFile), MatrixFile)
	if st, err := os.Stat(m); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return m
}

// maxMatrixBytes bounds a matrix file: it is read into memory.
const maxMatrixBytes = 4 << 20

// LoadMatrix reads a deprecation matrix file.
func LoadMatrix(file string) (*Matrix, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("deprecation matrix: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxMatrixBytes {
		return nil, fmt.Errorf("deprecation matrix %s: not a regular file of at most %d bytes", file, maxMatrixBytes)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("deprecation matrix: %w", err)
	}
	return ParseMatrix(file, data)
}

// ParseMatrix reads a deprecation matrix; name is the file it came from,
// for errors. Unknown fields, a key without versions, a version that does
// not read as one and a removal before its deprecation are refused.
func ParseMatrix(name string, data []byte) (*Matrix, error) {
	var m Matrix
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("deprecation matrix %s: %w", name, err)
	}
	for i, d := range m.Keys {
		where := fmt.Sprintf("deprecation matrix %s: deprecated-keys[%d]", name, i)
		switch {
		case d.Key == "":
			return nil, fmt.Errorf("%s: key is required", where)
		case d.DeprecatedIn == "" && d.RemovedIn == "":
			return nil, fmt.Errorf("%s (%s): give deprecated-in, removed-in or both", where, d.Key)
		case d.DeprecatedIn != "" && !validVersion(d.DeprecatedIn):
			return nil, fmt.Errorf("%s (%s): deprecated-in %q is not a version", where, d.Key, d.DeprecatedIn)
		case d.RemovedIn != "" && !validVersion(d.RemovedIn):
			return nil, fmt.Errorf("%s (%s): removed-in %q is not a version", where, d.Key, d.RemovedIn)
		case d.DeprecatedIn != "" && d.RemovedIn != "" && compareVersions(d.RemovedIn, d.DeprecatedIn) < 0:
			return nil, fmt.Errorf("%s (%s): removed-in %s is before deprecated-in %s", where, d.Key, d.RemovedIn, d.DeprecatedIn)
		}
	}
	return &m, nil
}

// status says what a target version makes of the key: removed (Error),
// deprecated (Warning), or nothing (ok false).
func (d Deprecation) status(target string) (Severity, bool) {
	switch {
	case d.RemovedIn != "" && compareVersions(target, d.RemovedIn) >= 0:
		return Error, true
	case d.DeprecatedIn != "" && compareVersions(target, d.DeprecatedIn) >= 0:
		return Warning, true
	}
	return "", false
}
