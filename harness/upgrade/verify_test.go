package upgrade

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/internal/testpki"
)

// sign makes a detached signature with openssl, as a vendor would.
func sign(t *testing.T, content, cert, key, out, form string) {
	t.Helper()
	cmd := exec.Command("openssl", "cms", "-sign", "-binary", "-in", content, "-signer", cert, "-inkey", key, "-outform", form, "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -sign: %v\n%s", err, b)
	}
}

// opensslVerify is the reference: exit status and stderr of openssl cms -verify.
func opensslVerify(t *testing.T, content, sig, form, ca, chain string) (bool, string) {
	t.Helper()
	if chain != "" {
		// openssl 3.0's cms has no -untrusted (and -certfile only finds
		// signers), so the extra chain joins the CAfile; the chain must
		// still end at the self-signed root there.
		bundle := filepath.Join(t.TempDir(), "bundle.pem")
		a, _ := os.ReadFile(ca)
		b, _ := os.ReadFile(chain)
		os.WriteFile(bundle, append(a, b...), 0o644)
		ca = bundle
	}
	args := []string{"cms", "-verify", "-binary", "-inform", form, "-in", sig, "-content", content, "-CAfile", ca, "-out", os.DevNull}
	var stderr bytes.Buffer
	cmd := exec.Command("openssl", args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	return err == nil, stderr.String()
}

func TestVerifyAgainstOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("these tests compare with openssl, which is not installed")
	}
	dir := t.TempDir()
	if err := testpki.Generate(dir); err != nil {
		t.Fatal(err)
	}
	pki := func(name string) string { return filepath.Join(dir, name) }
	pkg := pki("billing-3.0.zip")
	os.WriteFile(pkg, bytes.Repeat([]byte("billing 3.0 package contents\n"), 1000), 0o644)
	tampered := pki("tampered.zip")
	data, _ := os.ReadFile(pkg)
	data[len(data)/2] ^= 0x01
	os.WriteFile(tampered, data, 0o644)
	garbage := pki("garbage.p7s")
	os.WriteFile(garbage, []byte("this is not a signature"), 0o644)

	sign(t, pkg, pki(testpki.Vendor), pki(testpki.VendorKey), pki("vendor.p7s"), "DER")
	sign(t, pkg, pki(testpki.Vendor), pki(testpki.VendorKey), pki("vendor.pem.p7s"), "PEM")
	sign(t, pkg, pki(testpki.Expired), pki(testpki.ExpiredKey), pki("expired.p7s"), "DER")
	sign(t, pkg, pki(testpki.WrongUsage), pki(testpki.WrongKey), pki("wrong.p7s"), "DER")
	sign(t, pkg, pki(testpki.Stranger), pki(testpki.StrangerKey), pki("stranger.p7s"), "DER")

	tests := []struct {
		name        string
		content     string
		sig, form   string
		trust       string
		chain       string
		want        Verdict
		reason      string // in our reason
		opensslSays string // in openssl's complaint
	}{
		{"rotated CA, new root trusted", pkg, "vendor.p7s", "DER", testpki.NewRoot, "", Trusted, testpki.NewRootName, ""},
		{"PEM signature", pkg, "vendor.pem.p7s", "PEM", testpki.NewRoot, "", Trusted, testpki.VendorName, ""},
		{"only the old root", pkg, "vendor.p7s", "DER", testpki.OldRoot, "", UnknownAuthority, `issued by "` + testpki.NewRootName + `"`, "unable to get local issuer certificate"},
		{"old root plus the cross-signed chain", pkg, "vendor.p7s", "DER", testpki.OldRoot, testpki.Cross, Trusted, testpki.OldRootName, ""},
		{"a changed byte", tampered, "vendor.p7s", "DER", testpki.NewRoot, "", BadSignature, "changed after signing", "content verify error"},
		{"expired signer", pkg, "expired.p7s", "DER", testpki.NewRoot, "", Expired, "Billing Vendor Releases 2024", "certificate has expired"},
		{"self-signed stranger", pkg, "stranger.p7s", "DER", testpki.NewRoot, "", UnknownAuthority, "Somebody Else Releases", "self-signed certificate"},
		{"TLS certificate as signer", pkg, "wrong.p7s", "DER", testpki.NewRoot, "", WrongUsage, "serverAuth", "unsuitable certificate purpose"},
		{"not a signature", pkg, "garbage.p7s", "DER", testpki.NewRoot, "", Malformed, "not a CMS signature", "Error reading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots, err := LoadTrust(pki(tt.trust))
			if err != nil {
				t.Fatal(err)
			}
			trust := Trust{Roots: roots}
			if tt.chain != "" {
				if trust.Extra, err = LoadCerts(pki(tt.chain)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := VerifyFile(tt.content, pki(tt.sig), trust)
			if err != nil {
				t.Fatal(err)
			}
			if got.Verdict != tt.want || !strings.Contains(got.Reason, tt.reason) || strings.Contains(got.Reason, "\n") {
				t.Errorf("verdict %s: %s\nwant %s with %q", got.Verdict, got.Reason, tt.want, tt.reason)
			}
			if got.Verdict != Malformed && got.Signer == "" {
				t.Errorf("no signer named: %+v", got)
			}
			chain := ""
			if tt.chain != "" {
				chain = pki(tt.chain)
			}
			ok, complaint := opensslVerify(t, tt.content, pki(tt.sig), tt.form, pki(tt.trust), chain)
			if ok != (tt.want == Trusted) {
				t.Errorf("openssl cms -verify accepted=%v, rehearse says %s\n%s", ok, got.Verdict, complaint)
			}
			if !ok && !strings.Contains(complaint, tt.opensslSays) {
				t.Errorf("openssl's reason %q does not match the verdict %s (want %q)", complaint, tt.want, tt.opensslSays)
			}
		})
	}
	t.Run("chain of the trusted rotation", func(t *testing.T) {
		roots, _ := LoadTrust(pki(testpki.OldRoot))
		extra, _ := LoadCerts(pki(testpki.Cross))
		got, _ := VerifyFile(pkg, pki("vendor.p7s"), Trust{Roots: roots, Extra: extra})
		want := []string{testpki.VendorName, testpki.NewRootName, testpki.OldRootName}
		if strings.Join(got.Chain, "|") != strings.Join(want, "|") {
			t.Errorf("chain %v, want %v", got.Chain, want)
		}
	})
}
