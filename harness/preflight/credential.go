package preflight

import (
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
)

// credentialRule is hardcoded-credential: a secret written into a package
// file. A package is copied to every host it is applied to, kept in
// artifact stores and attached to tickets; a key in it is a key leaked to
// all of them, and one that every customer of the vendor shares. The rules
// are gitleaks' own (its default configuration, used as a library): none
// is written here by hand.
type credentialRule struct {
	d *detect.Detector
}

// gitleaksDetector builds gitleaks' detector once per process: its default
// configuration is compiled from TOML through viper's global instance (not
// safe to do twice at once), about 0.1 s. The detector itself is safe for
// concurrent use (gitleaks scans files in parallel with one).
var gitleaksDetector = sync.OnceValues(newDetectorUncached)

func newDetectorUncached() (*detect.Detector, error) {
	// gitleaks logs to stderr through a package logger: a library here,
	// it says nothing; findings are what it returns.
	logging.Logger = logging.Logger.Level(zerolog.Disabled)
	d, err := detect.NewDetectorDefaultConfig()
	if err != nil {
		return nil, fmt.Errorf("gitleaks default configuration: %w", err)
	}
	d.MaxDecodeDepth = 5 // what the gitleaks command does by default (base64, hex, percent encodings)
	return d, nil
}

func newCredentialRule() (*credentialRule, error) {
	d, err := gitleaksDetector()
	if err != nil {
		return nil, err
	}
	return &credentialRule{d: d}, nil
}

// check scans one text file. gitleaks' global allow-lists (lock files,
// vendored dependencies) apply to the file's path, as they do for
// gitleaks dir.
func (r *credentialRule) check(f File) []Finding {
	var out []Finding
	seen := map[string]bool{}
	for _, g := range r.d.Detect(detect.Fragment{Raw: string(f.Data), FilePath: f.Path, StartLine: 1}) {
		key := fmt.Sprintf("%d\x00%s", g.StartLine, g.RuleID)
		if seen[key] {
			continue
		}
		seen[key] = true
		line := max(g.StartLine, 1) // 1-based from StartLine: 1, as gitleaks' file source counts
		out = append(out, Finding{
			Rule:     RuleHardcodedCredential,
			Severity: Error,
			File:     f.Path,
			Line:     line,
			Message:  fmt.Sprintf("secret %s matches gitleaks rule %s", redact(g.Secret), g.RuleID),
			Fix:      "take the secret out of the package: read it from the host's own secret store or environment at install time, and rotate it (it has been shipped)",
		})
	}
	return out
}

// redact shows only the first 4 characters of a secret (as gitleaks
// --redact shows none): enough to find it, not enough to use it.
func redact(s string) string {
	r := []rune(s)
	if len(r) <= 8 {
		return "****"
	}
	return string(r[:4]) + "****"
}
