package preflight

import (
	"encoding/json"
	"io"
	"net/url"
	"strings"
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
// (no file) has no location; its message says where.
func ToSARIF(fs []Finding) SARIFLog {
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
		if f.File != "" {
			loc := SARIFLocation{PhysicalLocation: SARIFPhysical{ArtifactLocation: SARIFArtifact{URI: sarifURI(f.File)}}}
			if f.Line > 0 {
				loc.PhysicalLocation.Region = &SARIFRegion{StartLine: f.Line}
			}
			res.Locations = []SARIFLocation{loc}
		}
		run.Results = append(run.Results, res)
	}
	return SARIFLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []SARIFRun{run}}
}

// sarifURI escapes a package path as a relative URI reference.
func sarifURI(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// WriteSARIF writes findings as an indented SARIF 2.1.0 log.
func WriteSARIF(w io.Writer, fs []Finding) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ToSARIF(fs))
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
