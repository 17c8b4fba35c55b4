package upgrade

import (
	"archive/zip"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehearse/rehearse/internal/testpki"
)

// sign makes a detached signature with openssl, as a vendor would; extra
// are more openssl cms -sign arguments (-md sha1, -nocerts, a second
// -signer, -certfile).
func sign(t *testing.T, content, cert, key, out, form string, extra ...string) {
	t.Helper()
	args := append([]string{"cms", "-sign", "-binary", "-in", content, "-signer", cert, "-inkey", key, "-outform", form, "-out", out}, extra...)
	if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// opensslVerify is the reference: exit status and stderr of openssl cms
// -verify with the given purpose ("" for its default, smimesign).
func opensslVerify(t *testing.T, content, sig, form, ca, chain, purpose string) (bool, string) {
	t.Helper()
	if chain != "" {
		// openssl 3.0's cms has no -untrusted (and -certfile only finds
		// signers), so the extra chain joins the CAfile; the chain must
		// still end at the self-signed root there.
		a, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(chain)
		if err != nil {
			t.Fatal(err)
		}
		ca = filepath.Join(t.TempDir(), "bundle.pem")
		if err := os.WriteFile(ca, append(a, b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"cms", "-verify", "-binary", "-inform", form, "-in", sig, "-content", content, "-CAfile", ca, "-out", os.DevNull}
	if purpose != "" {
		args = append(args, "-purpose", purpose)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("openssl", args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	return err == nil, stderr.String()
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// weakChain makes, with openssl (Go no longer signs certificates with
// SHA-1), a root and a code-signing leaf it signed with ECDSA-SHA1.
func weakChain(t *testing.T, dir string) (root, leaf, key string) {
	t.Helper()
	root, leaf, key = filepath.Join(dir, "weak-root.pem"), filepath.Join(dir, "weak-leaf.pem"), filepath.Join(dir, "weak-leaf.key")
	ext := filepath.Join(dir, "weak.ext")
	writeFile(t, ext, []byte("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning\n"))
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", filepath.Join(dir, "weak-root.key"),
			"-out", root, "-subj", "/CN=Weak Root", "-days", "30", "-sha256"},
		{"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
			"-out", filepath.Join(dir, "weak-leaf.csr"), "-subj", "/CN=Weak Leaf"},
		{"x509", "-req", "-in", filepath.Join(dir, "weak-leaf.csr"), "-CA", root, "-CAkey", filepath.Join(dir, "weak-root.key"),
			"-CAcreateserial", "-sha1", "-days", "30", "-extfile", ext, "-out", leaf},
	} {
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	return root, leaf, key
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
	writeFile(t, pkg, bytes.Repeat([]byte("billing 3.0 package contents\n"), 1000))
	tampered := pki("tampered.zip")
	data, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	writeFile(t, tampered, data)
	writeFile(t, pki("garbage.p7s"), []byte("this is not a signature"))
	weakRoot, weakLeaf, weakKey := weakChain(t, dir)

	sign(t, pkg, pki(testpki.Vendor), pki(testpki.VendorKey), pki("vendor.p7s"), "DER")
	sign(t, pkg, pki(testpki.Vendor), pki(testpki.VendorKey), pki("vendor.pem.p7s"), "PEM")
	sign(t, pkg, pki(testpki.Expired), pki(testpki.ExpiredKey), pki("expired.p7s"), "DER")
	sign(t, pkg, pki(testpki.WrongUsage), pki(testpki.WrongKey), pki("wrong.p7s"), "DER")
	sign(t, pkg, pki(testpki.Stranger), pki(testpki.StrangerKey), pki("stranger.p7s"), "DER")
	sign(t, pkg, pki(testpki.Vendor), pki(testpki.VendorKey), pki("sha1.p7s"), "DER", "-md", "sha1")
	sign(t, pkg, pki(testpki.Vendor), pki(testpki.VendorKey), pki("two.p7s"), "DER", "-signer", pki(testpki.Second), "-inkey", pki(testpki.SecondKey))
	sign(t, pkg, pki(testpki.Vendor), pki(testpki.VendorKey), pki("nocerts.p7s"), "DER", "-nocerts")
	sign(t, pkg, pki(testpki.TLSCASigner), pki(testpki.TLSCASignerKey), pki("tls-ca.p7s"), "DER", "-certfile", pki(testpki.TLSCA))
	sign(t, pkg, pki(testpki.NotCASigner), pki(testpki.NotCASignerKey), pki("not-ca.p7s"), "DER", "-certfile", pki(testpki.NotCA))
	sign(t, pkg, weakLeaf, weakKey, pki("weak-chain.p7s"), "DER")

	const noReference = "-" // openssl accepts what rehearse refuses on purpose: no reference
	tests := []struct {
		name        string
		content     string
		sig, form   string
		trust       string
		chain       string
		usage       []Usage
		want        Verdict
		reason      string // in our reason
		purpose     string // openssl cms -verify -purpose ("" its default, smimesign; "any" for code-signing signers, which openssl 3.0 has no purpose for)
		opensslSays string // in openssl's complaint
	}{
		{"code-signing leaf, rotated CA, new root trusted", pkg, "vendor.p7s", "DER", testpki.NewRoot, "", nil, Trusted, testpki.NewRootName, "any", ""},
		{"PEM signature", pkg, "vendor.pem.p7s", "PEM", testpki.NewRoot, "", nil, Trusted, testpki.VendorName, "any", ""},
		{"only the old root", pkg, "vendor.p7s", "DER", testpki.OldRoot, "", nil, UnknownAuthority, `issued by "` + testpki.NewRootName + `"`, "any", "unable to get local issuer certificate"},
		{"code-signing leaf under the cross-signed rotation", pkg, "vendor.p7s", "DER", testpki.OldRoot, testpki.Cross, nil, Trusted, testpki.OldRootName, "any", ""},
		{"code-signing only", pkg, "vendor.p7s", "DER", testpki.OldRoot, testpki.Cross, []Usage{UsageCodeSigning}, Trusted, testpki.OldRootName, "any", ""},
		{"code-signing leaf checked for S/MIME only", pkg, "vendor.p7s", "DER", testpki.NewRoot, "", []Usage{UsageSMIME}, WrongUsage, "codeSigning", "", "unsuitable certificate purpose"},
		{"a changed byte", tampered, "vendor.p7s", "DER", testpki.NewRoot, "", nil, BadSignature, "changed after signing", "any", "content verify error"},
		{"expired signer", pkg, "expired.p7s", "DER", testpki.NewRoot, "", nil, Expired, "Billing Vendor Releases 2024", "", "certificate has expired"},
		{"self-signed stranger", pkg, "stranger.p7s", "DER", testpki.NewRoot, "", nil, UnknownAuthority, "Somebody Else Releases", "", "self-signed certificate"},
		{"TLS certificate as signer", pkg, "wrong.p7s", "DER", testpki.NewRoot, "", nil, WrongUsage, "serverAuth", "", "unsuitable certificate purpose"},
		{"TLS certificate as signer, any usage", pkg, "wrong.p7s", "DER", testpki.NewRoot, "", []Usage{UsageAny}, Trusted, testpki.NewRootName, "any", ""},
		{"intermediate limited to serverAuth", pkg, "tls-ca.p7s", "DER", testpki.NewRoot, "", nil, WrongUsage, `"Billing Vendor TLS CA" is limited to serverAuth`, "", "unsuitable certificate purpose"},
		{"non-CA intermediate", pkg, "not-ca.p7s", "DER", testpki.NewRoot, "", nil, InvalidChain, "parent certificate cannot sign this kind of certificate", "", "invalid CA certificate"},
		{"SHA-1 digest", pkg, "sha1.p7s", "DER", testpki.NewRoot, "", nil, WeakAlgorithm, "SHA-1", noReference, ""},
		{"certificate signed with SHA-1", pkg, "weak-chain.p7s", "DER", weakRoot, "", nil, WeakAlgorithm, "ECDSA-SHA1", noReference, ""},
		{"two signers", pkg, "two.p7s", "DER", testpki.NewRoot, "", nil, Malformed, "2 signers", noReference, ""},
		{"no signer certificate", pkg, "nocerts.p7s", "DER", testpki.NewRoot, "", nil, Malformed, "signer's certificate", "any", "signer certificate not found"},
		{"not a signature", pkg, "garbage.p7s", "DER", testpki.NewRoot, "", nil, Malformed, "not a CMS signature", "", "Error reading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !filepath.IsAbs(tt.trust) {
				tt.trust = pki(tt.trust)
			}
			roots, err := LoadTrust(tt.trust)
			if err != nil {
				t.Fatal(err)
			}
			trust := Trust{Roots: roots}
			if tt.chain != "" {
				if trust.Extra, err = LoadCerts(pki(tt.chain)); err != nil {
					t.Fatal(err)
				}
			}
			var opts []VerifyOption
			if tt.usage != nil {
				opts = append(opts, WithUsage(tt.usage...))
			}
			got, err := VerifyFile(tt.content, pki(tt.sig), trust, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Verdict != tt.want || !strings.Contains(got.Reason, tt.reason) || strings.Contains(got.Reason, "\n") {
				t.Errorf("verdict %s: %s\nwant %s with %q", got.Verdict, got.Reason, tt.want, tt.reason)
			}
			if got.Verdict != Malformed && got.Signer == "" {
				t.Errorf("no signer named: %+v", got)
			}
			if tt.purpose == noReference {
				return
			}
			chain := ""
			if tt.chain != "" {
				chain = pki(tt.chain)
			}
			ok, complaint := opensslVerify(t, tt.content, pki(tt.sig), tt.form, tt.trust, chain, tt.purpose)
			if ok != (tt.want == Trusted) {
				t.Errorf("openssl cms -verify accepted=%v, rehearse says %s\n%s", ok, got.Verdict, complaint)
			}
			if !ok && !strings.Contains(complaint, tt.opensslSays) {
				t.Errorf("openssl's reason %q does not match the verdict %s (want %q)", complaint, tt.want, tt.opensslSays)
			}
		})
	}
	t.Run("chain of the trusted rotation", func(t *testing.T) {
		roots, err := LoadTrust(pki(testpki.OldRoot))
		if err != nil {
			t.Fatal(err)
		}
		extra, err := LoadCerts(pki(testpki.Cross))
		if err != nil {
			t.Fatal(err)
		}
		got, err := VerifyFile(pkg, pki("vendor.p7s"), Trust{Roots: roots, Extra: extra})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{testpki.VendorName, testpki.NewRootName, testpki.OldRootName}
		if strings.Join(got.Chain, "|") != strings.Join(want, "|") {
			t.Errorf("chain %v, want %v", got.Chain, want)
		}
	})
	t.Run("unknown usage", func(t *testing.T) {
		got := Verify(data, nil, Trust{}, WithUsage("timestamping"))
		if got.Verdict != Malformed || !strings.Contains(got.Reason, `unknown usage "timestamping"`) {
			t.Errorf("%+v", got)
		}
	})
}

// TestPackageVerify checks that a package's signature is checked over the
// bytes Open unpacked and recorded on the package for Apply.
func TestPackageVerify(t *testing.T) {
	dir := t.TempDir()
	if err := testpki.Generate(dir); err != nil {
		t.Fatal(err)
	}
	pki := func(name string) string { return filepath.Join(dir, name) }
	roots, err := LoadTrust(pki(testpki.NewRoot))
	if err != nil {
		t.Fatal(err)
	}
	trust := Trust{Roots: roots}

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("upgrade.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("#!/bin/sh\necho upgraded\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zipPath := pki("pkg.zip")
	writeFile(t, zipPath, buf.Bytes())
	sign(t, zipPath, pki(testpki.Vendor), pki(testpki.VendorKey), zipPath+".p7s", "DER")
	sig, err := os.ReadFile(zipPath + ".p7s")
	if err != nil {
		t.Fatal(err)
	}

	p, err := Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, ok := p.Signature(); ok {
		t.Error("a package just opened has a signature result")
	}
	// The file on disk changes after Open: the bytes unpacked are what count.
	writeFile(t, zipPath, []byte("replaced after opening"))
	if got := p.Verify(sig, trust); got.Verdict != Trusted {
		t.Errorf("opened archive: %+v", got)
	}
	if got, ok := p.Signature(); !ok || got.Verdict != Trusted {
		t.Errorf("recorded: %+v %v", got, ok)
	}
	if got := p.Verify([]byte("garbage"), trust); got.Verdict != Malformed {
		t.Errorf("garbage: %+v", got)
	}
	if got, _ := p.Signature(); got.Verdict != Malformed {
		t.Errorf("the last verdict is not the recorded one: %+v", got)
	}

	d, err := Open(filepath.Join("testdata", "entry-pkg"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.Verify(sig, trust); got.Verdict != Malformed || !strings.Contains(got.Reason, "directory has no signed bytes") {
		t.Errorf("directory package: %+v", got)
	}
}

// TestVerifyChainErrors covers more RFC 5280 chain rules crypto/x509
// enforces: each must come out as its own verdict, not unknown-authority.
func TestVerifyChainErrors(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	issue := func(tmpl *x509.Certificate, k *ecdsa.PrivateKey, parent *x509.Certificate, pk *ecdsa.PrivateKey) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		if tmpl.NotBefore.IsZero() {
			tmpl.NotBefore, tmpl.NotAfter = now.AddDate(0, -1, 0), now.AddDate(1, 0, 0)
		}
		if parent == nil {
			parent, pk = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, pk)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true, MaxPathLen: -1,
			KeyUsage: x509.KeyUsageCertSign}
	}
	leafTmpl := func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "Signer"}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, DNSNames: []string{"releases.vendor.example"}}
	}
	rootKey := key()
	root := issue(ca("Root"), rootKey, nil, nil)
	pemFile := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, blk := range blocks {
			b = append(b, pem.EncodeToMemory(blk)...)
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, b)
		return p
	}
	rootFile := pemFile("root.pem", &pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	content := pemFile("content.bin", &pem.Block{Type: "DATA", Bytes: []byte("package")})

	// chain builds root -> intermediates (each from its template) -> leaf,
	// signs content with the leaf carrying the intermediates, and verifies.
	chain := func(name string, inters ...*x509.Certificate) Result {
		parent, pk := root, rootKey
		var carried []*pem.Block
		for _, tmpl := range inters {
			k := key()
			parent, pk = issue(tmpl, k, parent, pk), k
			carried = append(carried, &pem.Block{Type: "CERTIFICATE", Bytes: parent.Raw})
		}
		lk := key()
		leaf := issue(leafTmpl(), lk, parent, pk)
		der, err := x509.MarshalPKCS8PrivateKey(lk)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"-certfile", pemFile(name+"-chain.pem", carried...)}
		if len(carried) == 0 {
			args = nil
		}
		sig := filepath.Join(dir, name+".p7s")
		sign(t, content, pemFile(name+"-leaf.pem", &pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
			pemFile(name+"-leaf.key", &pem.Block{Type: "PRIVATE KEY", Bytes: der}), sig, "DER", args...)
		roots, err := LoadTrust(rootFile)
		if err != nil {
			t.Fatal(err)
		}
		res, err := VerifyFile(content, sig, Trust{Roots: roots})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	pathLenZero := ca("Path Length Zero CA")
	pathLenZero.MaxPathLen, pathLenZero.MaxPathLenZero = 0, true
	constrained := ca("Constrained CA")
	constrained.PermittedDNSDomains = []string{"other.example"}
	expired := ca("Expired CA")
	expired.NotBefore, expired.NotAfter = now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1)

	tests := []struct {
		name   string
		inters []*x509.Certificate
		want   Verdict
		reason string
	}{
		{"two intermediates", []*x509.Certificate{ca("Intermediate A"), ca("Intermediate B")}, Trusted, "Root"},
		{"path length exceeded", []*x509.Certificate{pathLenZero, ca("Below")}, InvalidChain, "too many intermediates"},
		{"name constraints", []*x509.Certificate{constrained}, InvalidChain, "not permitted"},
		{"expired intermediate", []*x509.Certificate{expired}, Expired, "Expired CA"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chain(fmt.Sprintf("case%d", i), tt.inters...)
			if got.Verdict != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("verdict %s: %s\nwant %s with %q", got.Verdict, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

// TestVerifyFileRefusesFifo: a fifo as the package or its signature is
// refused at once, not waited on (rehearse verify hung, deaf to SIGTERM).
func TestVerifyFileRefusesFifo(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pkg.zip")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "real.zip")
	writeFile(t, pkg, []byte("package"))
	promptly(t, fifo, func() {
		if _, err := VerifyFile(fifo, pkg+".p7s", Trust{}); err == nil || !strings.Contains(err.Error(), "not a regular file but a fifo") {
			t.Errorf("a fifo as the package: %v", err)
		}
	})
	promptly(t, fifo, func() {
		res, err := VerifyFile(pkg, fifo, Trust{})
		if err != nil || res.Verdict != Malformed || !strings.Contains(res.Reason, "not a regular file but a fifo") {
			t.Errorf("a fifo as the signature: %+v %v", res, err)
		}
	})
}

// promptly fails unless f returns within 5 s; a fifo it blocks on is then
// opened for writing, so that f can return.
func promptly(t *testing.T, fifo string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("blocked on a fifo")
	}
}
