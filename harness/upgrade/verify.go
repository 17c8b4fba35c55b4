package upgrade

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
)

// Verdict is the outcome of checking a package signature.
type Verdict string

// Verdicts.
const (
	Trusted          Verdict = "trusted"
	UnknownAuthority Verdict = "unknown-authority" // signature sound, chain reaches no trusted root
	BadSignature     Verdict = "bad-signature"     // content changed, or signed with another key
	Expired          Verdict = "expired"           // a certificate is expired or not yet valid
	WrongUsage       Verdict = "wrong-usage"       // the signer may not sign
	Malformed        Verdict = "malformed"         // not a CMS signature, or unreadable
)

// Verdicts lists every verdict.
var Verdicts = []Verdict{Trusted, UnknownAuthority, BadSignature, Expired, WrongUsage, Malformed}

// Result is a signature check, ready to print.
type Result struct {
	Verdict Verdict  `json:"verdict"`
	Reason  string   `json:"reason"`
	Signer  string   `json:"signer"`
	Chain   []string `json:"chain"` // subjects from the signer up to the trusted root, when one was found
}

// Trust is a trust store plus extra (untrusted) chain certificates.
type Trust struct {
	Roots *x509.CertPool
	Extra []*x509.Certificate
	Now   time.Time // zero: the current time
}

// LoadTrust reads PEM certificates from a file, or from every .pem/.crt
// file in a directory, as trusted roots.
func LoadTrust(path string) (*x509.CertPool, error) {
	certs, err := LoadCerts(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// LoadCerts reads PEM certificates from a file or directory.
func LoadCerts(path string) ([]*x509.Certificate, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		files = nil
		for _, pat := range []string{"*.pem", "*.crt"} {
			m, _ := filepath.Glob(filepath.Join(path, pat))
			files = append(files, m...)
		}
	}
	var certs []*x509.Certificate
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return certs, nil
}

// VerifyFile checks the detached CMS signature sigPath over the file at
// path. A missing or unreadable signature is malformed, not an error.
func VerifyFile(path, sigPath string, t Trust) (Result, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return Result{}, err
	}
	sig, err := os.ReadFile(sigPath)
	if err != nil {
		return Result{Verdict: Malformed, Reason: fmt.Sprintf("signature %s: %v", sigPath, err)}, nil
	}
	return Verify(content, sig, t), nil
}

// Verify checks a detached CMS/PKCS#7 signature (DER or PEM, as
// `openssl cms -sign -binary` makes it) over content.
func Verify(content, sig []byte, t Trust) Result {
	now := t.Now
	if now.IsZero() {
		now = time.Now()
	}
	if b, _ := pem.Decode(sig); b != nil {
		sig = b.Bytes
	}
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		return Result{Verdict: Malformed, Reason: "not a CMS signature: " + err.Error()}
	}
	leaf := p7.GetOnlySigner()
	if leaf == nil {
		return Result{Verdict: Malformed, Reason: "the signature has no single signer certificate"}
	}
	r := Result{Signer: name(leaf)}
	p7.Content = content
	if err := p7.Verify(); err != nil {
		var st *pkcs7.SigningTimeNotValidError
		var md *pkcs7.MessageDigestMismatchError
		switch {
		case errors.As(err, &st):
			r.Verdict = Expired
			r.Reason = fmt.Sprintf("signer %q (issuer %q) was not valid at signing time %s (valid %s to %s)",
				r.Signer, issuerName(leaf), st.SigningTime.Format(time.RFC3339), leaf.NotBefore.Format(time.DateOnly), leaf.NotAfter.Format(time.DateOnly))
		case errors.As(err, &md):
			r.Verdict = BadSignature
			r.Reason = fmt.Sprintf("the package does not match what %q (issuer %q) signed: it changed after signing", r.Signer, issuerName(leaf))
		default:
			r.Verdict = BadSignature
			r.Reason = fmt.Sprintf("signature by %q (issuer %q) does not verify: %v", r.Signer, issuerName(leaf), err)
		}
		return r
	}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		r.Verdict = Expired
		r.Reason = fmt.Sprintf("signer %q (issuer %q) is valid %s to %s, not now", r.Signer, issuerName(leaf),
			leaf.NotBefore.Format(time.DateOnly), leaf.NotAfter.Format(time.DateOnly))
		return r
	}
	if why := signingUsage(leaf); why != "" {
		r.Verdict = WrongUsage
		r.Reason = fmt.Sprintf("signer %q (issuer %q) %s", r.Signer, issuerName(leaf), why)
		return r
	}
	inter := x509.NewCertPool()
	var pool []*x509.Certificate
	for _, c := range append(slices.Clone(p7.Certificates), t.Extra...) {
		if !c.Equal(leaf) {
			inter.AddCert(c)
			pool = append(pool, c)
		}
	}
	roots := t.Roots
	if roots == nil {
		roots = x509.NewCertPool()
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var cie x509.CertificateInvalidError
		switch {
		case errors.As(err, &cie) && cie.Reason == x509.Expired:
			r.Verdict = Expired
			r.Reason = fmt.Sprintf("certificate %q in the chain of %q is expired or not yet valid", name(cie.Cert), r.Signer)
		case errors.As(err, &cie) && cie.Reason == x509.IncompatibleUsage:
			r.Verdict = WrongUsage
			r.Reason = fmt.Sprintf("the chain of %q does not allow signing: %v", r.Signer, err)
		default:
			top := walkUp(leaf, pool)
			r.Verdict = UnknownAuthority
			r.Reason = fmt.Sprintf("signature by %q is sound, but its chain stops at %q, issued by %q, which is not in the trust store",
				r.Signer, name(top), issuerName(top))
			for c := leaf; ; {
				r.Chain = append(r.Chain, name(c))
				if c == top {
					break
				}
				c = parentOf(c, pool)
			}
		}
		return r
	}
	best := chains[0]
	for _, c := range chains {
		if len(c) < len(best) {
			best = c
		}
	}
	for _, c := range best {
		r.Chain = append(r.Chain, name(c))
	}
	r.Verdict = Trusted
	r.Reason = fmt.Sprintf("signed by %q, issued by %q, chain ends at trusted root %q", r.Signer, issuerName(leaf), name(best[len(best)-1]))
	return r
}

// signingUsage says why a signer may not sign ("" when it may), following
// openssl's default purpose for CMS signers (smimesign).
func signingUsage(c *x509.Certificate) string {
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return "has no digitalSignature key usage"
	}
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return ""
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageEmailProtection || u == x509.ExtKeyUsageAny {
			return ""
		}
	}
	var have []string
	for _, u := range c.ExtKeyUsage {
		have = append(have, extKeyUsageName(u))
	}
	return fmt.Sprintf("is for %s, not for signing (wants emailProtection)", strings.Join(have, ", "))
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageCodeSigning:
		return "codeSigning"
	case x509.ExtKeyUsageTimeStamping:
		return "timeStamping"
	case x509.ExtKeyUsageOCSPSigning:
		return "OCSPSigning"
	}
	return fmt.Sprintf("usage %d", u)
}

// parentOf finds the certificate in pool that issued c, or nil.
func parentOf(c *x509.Certificate, pool []*x509.Certificate) *x509.Certificate {
	for _, p := range pool {
		if p.Equal(c) || !bytes.Equal(p.RawSubject, c.RawIssuer) {
			continue
		}
		if c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}

// walkUp follows issuers through pool as far as it goes.
func walkUp(c *x509.Certificate, pool []*x509.Certificate) *x509.Certificate {
	seen := map[*x509.Certificate]bool{}
	for {
		p := parentOf(c, pool)
		if p == nil || seen[p] {
			return c
		}
		seen[p] = true
		c = p
	}
}

func name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.Subject.String()
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}
