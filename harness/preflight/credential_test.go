package preflight

import (
	"strings"
	"testing"
)

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
			fs := r.check(File{Path: c.file, Data: []byte(c.text)})
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
