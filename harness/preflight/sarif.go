package preflight

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/rehearse/rehearse/harness/upgrade"
)

// SARIF 2.1.0, the subset code scanning tools read: one run of one tool,
// its rules, and results located on the package's files.
// https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html

// SARIFSchema is the schema a SARIF log names.
const SARIFSchema = "https://json.schemastore.org/sarif-2.1.0.json"

// SARIFLog is a SARIF log (§3.13).
type SARIFLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []SARIFRun `json:"runs"`
}

// SARIFRun is one run (§3.14).
type SARIFRun struct {
	Tool    SARIFTool     `json:"tool"`
	Results []SARIFResult `json:"results"`
}

// SARIFTool is the tool (§3.18) and its driver (§3.19).
type SARIFTool struct {
	Driver SARIFDriver `json:"driver"`
}

// SARIFDriver is the tool component that ran (§3.19).
type SARIFDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []SARIFRule `json:"rules"`
}

// SARIFRule is a reportingDescriptor (§3.49).
type SARIFRule struct {
	ID                   string        `json:"id"`
	ShortDescription     SARIFMessage  `json:"shortDescription"`
	Help                 SARIFMessage  `json:"help"`
	DefaultConfiguration *SARIFDefault `json:"defaultConfiguration,omitempty"`
}

// SARIFDefault is a reportingConfiguration (§3.50).
type SARIFDefault struct {
	Level string `json:"level"`
}

// SARIFMessage is a message (§3.11).
type SARIFMessage struct {
	Text string `json:"text"`
}

// SARIFResult is one result (§3.27).
type SARIFResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   SARIFMessage    `json:"message"`
	Locations []SARIFLocation `json:"locations,omitempty"`
}

// SARIFLocation is a location (§3.28) with its physical location (§3.29).
type SARIFLocation struct {
	PhysicalLocation SARIFPhysical `json:"physicalLocation"`
}

// SARIFPhysical is a physicalLocation (§3.29).
type SARIFPhysical struct {
	ArtifactLocation SARIFArtifact `json:"artifactLocation"`
	Region           *SARIFRegion  `json:"region,omitempty"`
}

// SARIFArtifact is an artifactLocation (§3.4): a URI relative to the package root.
type SARIFArtifact struct {
	URI string `json:"uri"`
}

// SARIFRegion is a region (§3.30); lines are 1-based.
type SARIFRegion struct {
	StartLine int `json:"startLine"`
}

// sarifLevel maps a severity to a SARIF level (§3.27.10).
func sarifLevel(s Severity) string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// ToSARIF turns findings into a SARIF 2.1.0 log: every rule (Rules) with
// its help, each finding a result located on its package file (uri
// relative to the package root) and line. A finding about the environment
// (no file; its message says where, service:path:line) is anchored on
// upgrade.yaml, at the line SARIFAnchor gives or line 1: code scanning
// (GitHub's upload) refuses a log with a result that has no location.
func ToSARIF(fs []Finding, opts ...SARIFOption) SARIFLog {
	o := sarifOptions{anchorLine: 1}
	for _, opt := range opts {
		opt(&o)
	}
	run := SARIFRun{Tool: SARIFTool{Driver: SARIFDriver{Name: "rehearse", InformationURI: "https://github.com/rehearse/rehearse"}}, Results: []SARIFResult{}}
	index := map[string]int{}
	for i, r := range Rules {
		index[r.ID] = i
		short, _, _ := strings.Cut(r.Help, ":")
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, SARIFRule{ID: r.ID, ShortDescription: SARIFMessage{short}, Help: SARIFMessage{r.Help},
			DefaultConfiguration: &SARIFDefault{Level: sarifLevel(r.Severity)}})
	}
	for _, f := range fs {
		i, ok := index[f.Rule]
		if !ok { // a rule added without a catalog entry still gets one
			i = len(run.Tool.Driver.Rules)
			index[f.Rule] = i
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, SARIFRule{ID: f.Rule, ShortDescription: SARIFMessage{f.Rule}, Help: SARIFMessage{f.Rule}})
		}
		msg := f.Message
		if f.Fix != "" {
			msg += ". Fix: " + f.Fix
		}
		res := SARIFResult{RuleID: f.Rule, RuleIndex: i, Level: sarifLevel(f.Severity), Message: SARIFMessage{msg}}
		file, line := f.File, f.Line
		if file == "" {
			file, line = upgrade.ManifestFile, o.anchorLine
		}
		// Every result has a region: GitHub's code scanning upload
		// requires region.startLine; a finding about a whole file is put
		// on its first line.
		loc := SARIFLocation{PhysicalLocation: SARIFPhysical{ArtifactLocation: SARIFArtifact{URI: sarifURI(file)},
			Region: &SARIFRegion{StartLine: max(line, 1)}}}
		res.Locations = []SARIFLocation{loc}
		run.Results = append(run.Results, res)
	}
	return SARIFLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []SARIFRun{run}}
}

// SARIFOption changes ToSARIF and WriteSARIF.
type SARIFOption func(*sarifOptions)

type sarifOptions struct {
	anchorLine int
}

// SARIFAnchor anchors the environment's findings on the package's
// upgrade.yaml at its service: line (line 1 when it has none, the default
// without this option).
func SARIFAnchor(p *upgrade.Package) SARIFOption {
	line := 1
	if root, err := os.OpenRoot(p.Dir()); err == nil {
		if f, err := readFile(root, upgrade.ManifestFile, DefaultLimits.FileBytes); err == nil && !f.Over {
			for i, l := range bytes.Split(f.Data, []byte("\n")) {
				if bytes.HasPrefix(l, []byte("service:")) {
					line = i + 1
					break
				}
			}
		}
		root.Close()
	}
	return func(o *sarifOptions) { o.anchorLine = line }
}

// sarifURI escapes a package path as a relative URI reference: each
// segment percent-encoded (url.PathEscape), and "./" before a first
// segment with a colon, which would otherwise read as a scheme (c:x.sh).
func sarifURI(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := strings.Join(segs, "/")
	if strings.Contains(segs[0], ":") {
		u = "./" + u
	}
	return u
}

// WriteSARIF writes findings as an indented SARIF 2.1.0 log.
func WriteSARIF(w io.Writer, fs []Finding, opts ...SARIFOption) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ToSARIF(fs, opts...))
}

// WriteJSON writes findings as {"findings": [...]} (an empty list, never
// null): rehearse preflight --format json, a public contract.
func WriteJSON(w io.Writer, fs []Finding) error {
	if fs == nil {
		fs = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Findings []Finding `json:"findings"`
	}{fs})
}
