package preflight

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

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
	d          *detect.Detector
	budget     atomic.Int64 // findings the Check may still report
	bytes      atomic.Int64 // bytes the Check may still give gitleaks
	longBudget atomic.Int64 // bytes of over-long lines the Check may still give gitleaks
	scanned    atomic.Int64 // bytes given to gitleaks (tests bound the work by it)
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

// Bounds on the credential scan. gitleaks locates each finding by
// walking every newline of the fragment it was given (detect/location.go),
// so one fragment costs findings x lines: the file is fed in chunks of
// about credentialChunk bytes cut at a newline, as the gitleaks command
// reads files (sources/file.go, 100 KB buffers), a file stops being
// scanned after credentialFileFindings findings, and a Check after
// credentialBudget findings or credentialBytes bytes in all. gitleaks'
// regular expressions cost about 0.1 s a MB of ordinary lines on this
// machine, but 15 times that on one line with no break (4 MB of
// password=<random>: 30 s, chunked or not), so the pieces of lines longer
// than a chunk have a budget of their own, credentialLongBytes.
const (
	credentialChunk        = 100_000
	credentialFileFindings = 100
	credentialBudget       = 1_000
	credentialBytes        = 64 << 20
	credentialLongBytes    = 1 << 20
)

func newCredentialRule() (*credentialRule, error) {
	d, err := gitleaksDetector()
	if err != nil {
		return nil, err
	}
	r := &credentialRule{d: d}
	r.budget.Store(credentialBudget)
	r.bytes.Store(credentialBytes)
	r.longBudget.Store(credentialLongBytes)
	return r, nil
}

// credentialChunks cuts data into pieces of at most size bytes, each
// ending at a newline where the piece has one; a piece that does not is
// a line longer than size, cut anyway (cut true).
func credentialChunks(data []byte, size int) (chunks [][]byte, cut []bool) {
	for len(data) > 0 {
		if len(data) <= size {
			return append(chunks, data), append(cut, false)
		}
		end := bytes.LastIndexByte(data[:size], '\n') + 1
		long := end == 0
		if long {
			end = size
			for end > size-utf8.UTFMax && !utf8.RuneStart(data[end]) {
				end-- // do not split a character
			}
		}
		chunks, cut = append(chunks, data[:end]), append(cut, long)
		data = data[end:]
	}
	return chunks, cut
}

// check scans one text file, a chunk at a time (see credentialChunk),
// until ctx is done or the file's or the Check's findings are spent; a
// cannot-tell finding says what was not scanned. gitleaks' global
// allow-lists (lock files, vendored dependencies) apply to the file's
// path, as they do for gitleaks dir.
func (r *credentialRule) check(ctx context.Context, f File) []Finding {
	var out []Finding
	seen := map[string]bool{}
	chunks, cut := credentialChunks(f.Data, credentialChunk)
	line := 1 // the line the chunk starts on
	var cutLines, skipped []int
	for i, chunk := range chunks {
		if ctx.Err() != nil {
			return out
		}
		var why string
		switch {
		case len(out) >= credentialFileFindings:
			why = fmt.Sprintf("%d credential findings in this file", credentialFileFindings)
		case r.budget.Load() <= 0:
			why = fmt.Sprintf("%d credential findings in the package in all", credentialBudget)
		case r.bytes.Add(-int64(len(chunk))) < 0:
			why = fmt.Sprintf("%d bytes scanned in the package in all", credentialBytes)
		}
		if why != "" {
			out = append(out, Finding{Rule: RuleCannotTell, Severity: Info, File: f.Path, Line: line,
				Message: fmt.Sprintf("not scanned for credentials from this line on: the scan stopped after %s", why),
				Fix:     "take the secrets found out first, then check again (or run gitleaks on the file)"})
			break
		}
		if cut[i] {
			if r.longBudget.Add(-int64(len(chunk))) < 0 {
				skipped = append(skipped, line)
				continue // the rest of the line: no newline in this piece
			}
			cutLines = append(cutLines, line)
		}
		r.scanned.Add(int64(len(chunk)))
		for _, g := range r.d.DetectContext(ctx, detect.Fragment{Raw: string(chunk), FilePath: f.Path, StartLine: line}) {
			key := fmt.Sprintf("%d\x00%s", g.StartLine, g.RuleID)
			if seen[key] || len(out) >= credentialFileFindings {
				continue
			}
			seen[key] = true
			r.budget.Add(-1)
			out = append(out, Finding{
				Rule:     RuleHardcodedCredential,
				Severity: Error,
				File:     f.Path,
				Line:     max(g.StartLine, 1), // 1-based from StartLine, as gitleaks' file source counts
				Message:  fmt.Sprintf("secret %s matches gitleaks rule %s", redact(g.Secret), g.RuleID),
				Fix:      "take the secret out of the package: read it from the host's own secret store or environment at install time, and rotate it (it has been shipped)",
			})
		}
		line += bytes.Count(chunk, []byte("\n"))
	}
	skipped = slices.Compact(skipped)
	for _, l := range slices.Compact(cutLines) {
		if !slices.Contains(skipped, l) {
			out = append(out, Finding{Rule: RuleCannotTell, Severity: Info, File: f.Path, Line: l,
				Message: fmt.Sprintf("a line longer than %d bytes: scanned for credentials in pieces, so a secret across a cut may be missed", credentialChunk),
				Fix:     "check the line by hand"})
		}
	}
	for _, l := range skipped {
		out = append(out, Finding{Rule: RuleCannotTell, Severity: Info, File: f.Path, Line: l,
			Message: fmt.Sprintf("a line longer than %d bytes: not all of it was scanned for credentials (the scan reads at most %d bytes of such lines in a package)", credentialChunk, credentialLongBytes),
			Fix:     "check the line by hand"})
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
