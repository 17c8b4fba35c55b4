package preflight

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomKey is a high-entropy token gitleaks' generic-api-key takes for a secret.
func randomKey(r *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// TestCredentialWorkBounded: a 4 MB file of secrets (one a line) is
// scanned in chunks until the file's findings are spent, not in one
// fragment whose every finding walks every newline; the work is bounded
// by the bytes given to gitleaks and the findings kept.
func TestCredentialWorkBounded(t *testing.T) {
	r, err := newCredentialRule()
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 4<<20 {
		fmt.Fprintf(&b, "api_key = \"%s\"\n", randomKey(rnd))
	}
	fs := r.check(context.Background(), File{Path: "keys.conf", Data: b.Bytes()})
	creds, rest := 0, 0
	for _, f := range fs {
		switch f.Rule {
		case RuleHardcodedCredential:
			creds++
		case RuleCannotTell:
			rest++
			if !strings.Contains(f.Message, "not scanned for credentials from this line on") || f.Line < 2 {
				t.Errorf("cannot-tell: %+v", f)
			}
		}
	}
	if creds == 0 || creds > credentialFileFindings || rest != 1 {
		t.Errorf("%d credential findings (want 1..%d) and %d cannot-tell (want 1)", creds, credentialFileFindings, rest)
	}
	if got := r.scanned.Load(); got > 2*credentialChunk {
		t.Errorf("gave gitleaks %d bytes of the %d-byte file; want at most %d", got, b.Len(), 2*credentialChunk)
	}
}

// BenchmarkCredentialWorstCase: the review's two 4 MB files (a secret a
// line; one line of password=...), at the file size limit.
func BenchmarkCredentialWorstCase(b *testing.B) {
	r, err := newCredentialRule()
	if err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var lines bytes.Buffer
	for lines.Len() < 4<<20 {
		fmt.Fprintf(&lines, "api_key = \"%s\"\n", randomKey(rnd))
	}
	var long bytes.Buffer
	long.WriteString("password=")
	for long.Len() < 4<<20 {
		long.WriteString(randomKey(rnd))
	}
	var plain bytes.Buffer
	for plain.Len() < 4<<20 {
		fmt.Fprintf(&plain, "setting_%d = a value of some words %d\n", plain.Len(), rnd.IntN(1000))
	}
	for name, data := range map[string][]byte{"keys-a-line": lines.Bytes(), "one-long-line": long.Bytes(), "plain-lines": plain.Bytes()} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r.budget.Store(credentialBudget)
				r.bytes.Store(credentialBytes)
				r.longBudget.Store(credentialLongBytes)
				r.check(context.Background(), File{Path: "x.conf", Data: data})
			}
		})
	}
}

// TestCredentialBudget: past the Check's budget, a file says it was not scanned.
func TestCredentialBudget(t *testing.T) {
	r, err := newCredentialRule()
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for range 3 {
		fmt.Fprintf(&b, "api_key = \"%s\"\n", randomKey(rnd))
	}
	r.budget.Store(0)
	fs := r.check(context.Background(), File{Path: "a.conf", Data: []byte(b.String())})
	if len(fs) != 1 || fs[0].Rule != RuleCannotTell || !strings.Contains(fs[0].Message, "credential findings in the package in all") {
		t.Errorf("findings budget spent: want one cannot-tell, got%s", show(fs))
	}
	r.budget.Store(credentialBudget)
	r.bytes.Store(10)
	fs = r.check(context.Background(), File{Path: "a.conf", Data: []byte(b.String())})
	if len(fs) != 1 || fs[0].Rule != RuleCannotTell || !strings.Contains(fs[0].Message, "bytes scanned in the package in all") {
		t.Errorf("bytes budget spent: want one cannot-tell, got%s", show(fs))
	}
}

// TestCredentialLongLine: one 4 MB line (password=<random>, 30 s of
// gitleaks' regular expressions) is scanned only up to the budget of
// over-long lines, and said to be.
func TestCredentialLongLine(t *testing.T) {
	r, err := newCredentialRule()
	if err != nil {
		t.Fatal(err)
	}
	r.longBudget.Store(3 * credentialChunk / 2)
	rnd := rand.New(rand.NewPCG(5, 6))
	var b bytes.Buffer
	b.WriteString("password=")
	for b.Len() < 4<<20 {
		b.WriteString(randomKey(rnd))
	}
	b.WriteString("\nGITHUB_TOKEN=ghp_" + strings.Repeat("A1b2C3d4E5", 3) + "xyzabc\n")
	fs := r.check(context.Background(), File{Path: "one.txt", Data: b.Bytes()})
	if got := r.scanned.Load(); got > 3*credentialChunk {
		t.Errorf("gave gitleaks %d bytes of the %d-byte file; want at most %d", got, b.Len(), 3*credentialChunk)
	}
	if !has(fs, RuleCannotTell, Info, "one.txt", 1) || !strings.Contains(show(fs), "not all of it was scanned") {
		t.Errorf("the long line's unscanned rest not said:%s", show(fs))
	}
	if !has(fs, RuleHardcodedCredential, Error, "one.txt", 2) {
		t.Errorf("the token after the long line not found:%s", show(fs))
	}
}

// TestCredentialChunks: lines are counted across chunks, and a line
// longer than a chunk is cut, scanned and said to be.
func TestCredentialChunks(t *testing.T) {
	r, err := newCredentialRule()
	if err != nil {
		t.Fatal(err)
	}
	token := "ghp_" + strings.Repeat("A1b2C3d4E5", 3) + "xyzabc"
	var b strings.Builder
	for b.Len() < 3*credentialChunk {
		b.WriteString("listen = :80 # a harmless line of configuration\n")
	}
	line := 1 + strings.Count(b.String(), "\n")
	b.WriteString("GITHUB_TOKEN=" + token + "\n")
	fs := r.check(context.Background(), File{Path: "app.env", Data: []byte(b.String())})
	if !has(fs, RuleHardcodedCredential, Error, "app.env", line) {
		t.Errorf("token on line %d not found:%s", line, show(fs))
	}

	long := "x=" + strings.Repeat("abc ", 3*credentialChunk/4) + "GITHUB_TOKEN=" + token + "\nnext\n"
	fs = r.check(context.Background(), File{Path: "long.txt", Data: []byte("first\n" + long)})
	if !has(fs, RuleHardcodedCredential, Error, "long.txt", 2) || !has(fs, RuleCannotTell, Info, "long.txt", 2) {
		t.Errorf("long line: want the token and a cannot-tell on line 2:%s", show(fs))
	}

	data := []byte("a\nbb\n" + strings.Repeat("c", 25) + "\ndd\n")
	chunks, cut := credentialChunks(data, 10)
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatalf("chunks join to %q", got)
	}
	for i, c := range chunks {
		if len(c) > 10 || (!cut[i] && i < len(chunks)-1 && c[len(c)-1] != '\n') {
			t.Errorf("chunk %d %q (cut %v)", i, c, cut[i])
		}
	}
}

func TestCredentialRule(t *testing.T) {
	r, err := newCredentialRule()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, file, text string
		line             int // 0: no finding
	}{
		{"stripe key in a template", "config/app.conf.tmpl", "listen = :80\napi_key = sk_live_4eC39HqLyjWDarjtT1zdp7dc\n", 2},
		{"github token in a script", "bin/post.sh", "#!/bin/sh\n\nexport GITHUB_TOKEN=ghp_A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5xyzabc\n", 3},
		{"private key", "certs/key.pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq7BFUAkGAj2q1ITvuxD3uzUkl0yC5UoCrTXvWtGGlzuqLq2X\nxqyXKj8eCSRqUMhOgyJPLXbB8ixIbYkOgw2jrp9YYpr1q5lSmvWpW9PMKg3QcTgw\n-----END RSA PRIVATE KEY-----\n", 1},
		{"a variable, not a secret", "config/app.conf.tmpl", "api_key = {{ env \"API_KEY\" }}\n", 0},
		{"a placeholder", "README.md", "Set STRIPE_KEY to your key (sk_live_...).\n", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := r.check(context.Background(), File{Path: c.file, Data: []byte(c.text)})
			if c.line == 0 {
				if len(fs) != 0 {
					t.Errorf("want nothing, got%s", show(fs))
				}
				return
			}
			if !has(fs, RuleHardcodedCredential, Error, c.file, c.line) {
				t.Fatalf("want %s:%d, got%s", c.file, c.line, show(fs))
			}
			for _, f := range fs {
				if strings.Contains(f.Message, "4eC39HqLyjWDarjtT1zdp7dc") || strings.Contains(f.Message, "A1b2C3d4E5A1b2C3d4") {
					t.Errorf("the secret is in the message: %s", f.Message)
				}
			}
		})
	}
}
