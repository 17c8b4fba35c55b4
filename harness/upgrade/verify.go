package upgrade

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
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
	InvalidChain     Verdict = "invalid-chain"     // a chain reaches a trusted root, but a link breaks RFC 5280 (non-CA issuer, path length, name constraints)
	BadSignature     Verdict = "bad-signature"     // content changed, or signed with another key
	Expired          Verdict = "expired"           // a certificate is expired or not yet valid
	WrongUsage       Verdict = "wrong-usage"       // the signer, or a CA above it, may not sign code or mail
	WeakAlgorithm    Verdict = "weak-algorithm"    // SHA-1 or MD5 in the signature or in the chain
	Malformed        Verdict = "malformed"         // not a CMS signature with exactly one signer and its certificate, or unreadable
)

// Verdicts lists every verdict.
var Verdicts = []Verdict{Trusted, UnknownAuthority, InvalidChain, BadSignature, Expired, WrongUsage, WeakAlgorithm, Malformed}

// Rejections lists every verdict but Trusted, for messages.
func Rejections() string {
	var s []string
	for _, v := range Verdicts {
		if v != Trusted {
			s = append(s, string(v))
		}
	}
	return strings.Join(s, ", ")
}

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

// Usage is what a signer's extended key usage must allow.
type Usage string

// Usages a signer may be checked for.
const (
	UsageCodeSigning Usage = "code-signing" // extKeyUsage codeSigning, what vendors are issued
	UsageSMIME       Usage = "smime"        // extKeyUsage emailProtection, openssl cms's default
	UsageAny         Usage = "any"          // no extended key usage check at all (anyExtendedKeyUsage)
)

// Usages lists every Usage.
var Usages = []Usage{UsageCodeSigning, UsageSMIME, UsageAny}

var usageEKU = map[Usage]x509.ExtKeyUsage{
	UsageCodeSigning: x509.ExtKeyUsageCodeSigning,
	UsageSMIME:       x509.ExtKeyUsageEmailProtection,
	UsageAny:         x509.ExtKeyUsageAny,
}

// VerifyOption configures a signature check.
type VerifyOption func(*verifyOptions) error

type verifyOptions struct {
	usages []x509.ExtKeyUsage
}

func defaultVerifyOptions() verifyOptions {
	return verifyOptions{usages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageEmailProtection}}
}

// WithUsage sets what the signer's chain must allow; a chain is accepted
// when any one of them is allowed by every certificate on it (RFC 5280, as
// crypto/x509 checks it). Default: UsageCodeSigning and UsageSMIME.
func WithUsage(u ...Usage) VerifyOption {
	return func(o *verifyOptions) error {
		if len(u) == 0 {
			return errors.New("with usage: no usage given")
		}
		o.usages = nil
		for _, x := range u {
			eku, ok := usageEKU[x]
			if !ok {
				return fmt.Errorf("with usage: unknown usage %q (want code-signing, smime or any)", x)
			}
			o.usages = append(o.usages, eku)
		}
		return nil
	}
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

// Verify checks the detached signature sig over exactly the bytes Open
// unpacked, records the result on the package (see Signature) and returns
// it. A directory package has no signed bytes: its verdict is Malformed.
func (p *Package) Verify(sig []byte, t Trust, opts ...VerifyOption) Result {
	var r Result
	if p.archive == nil {
		r = Result{Verdict: Malformed, Reason: fmt.Sprintf("package %s is a directory: a directory has no signed bytes (sign and open the archive)", p.Source)}
	} else {
		r = Verify(p.archive, sig, t, opts...)
	}
	p.signature = &r
	return r
}

// Signature returns the result of the package's last Verify; false when it
// was never verified.
func (p *Package) Signature() (Result, bool) {
	if p.signature == nil {
		return Result{}, false
	}
	return *p.signature, true
}

// maxSignatureBytes bounds a detached signature: it is held in memory.
const maxSignatureBytes = 1 << 20

// ReadSignature reads a detached signature file as Open reads an archive:
// once, a regular file only (a fifo is refused, not waited on), at most
// 1 MiB.
func ReadSignature(path string) ([]byte, error) {
	return readArchive(path, maxSignatureBytes, "1 MiB for a signature")
}

// VerifyFile checks the detached CMS signature sigPath over the file at
// path, read once as Open reads an archive (a regular file within
// DefaultLimits.ArchiveBytes). A missing or unreadable signature is malformed, not an
// error.
func VerifyFile(path, sigPath string, t Trust, opts ...VerifyOption) (Result, error) {
	content, err := readArchive(path, DefaultLimits.ArchiveBytes, "Limits.ArchiveBytes")
	if err != nil {
		return Result{}, fmt.Errorf("verify package: %w", err)
	}
	sig, err := ReadSignature(sigPath)
	if err != nil {
		return Result{Verdict: Malformed, Reason: fmt.Sprintf("signature %s: %v", sigPath, err)}, nil
	}
	return Verify(content, sig, t, opts...), nil
}

// Verify checks a detached CMS/PKCS#7 signature (DER or PEM, as
// `openssl cms -sign -binary` makes it) over content. An invalid option
// gives a Malformed result naming it.
func Verify(content, sig []byte, t Trust, opts ...VerifyOption) Result {
	o := defaultVerifyOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return Result{Verdict: Malformed, Reason: "verify: " + err.Error()}
		}
	}
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
	switch len(p7.Signers) {
	case 0:
		return Result{Verdict: Malformed, Reason: "the signature has no signer"}
	case 1:
	default:
		return Result{Verdict: Malformed, Reason: fmt.Sprintf("the signature has %d signers; a package must have exactly one", len(p7.Signers))}
	}
	leaf := p7.GetOnlySigner()
	if leaf == nil {
		return Result{Verdict: Malformed, Reason: "the signature does not carry its signer's certificate (signed with -nocerts?)"}
	}
	r := Result{Signer: name(leaf)}
	si := p7.Signers[0]
	for _, alg := range []asn1.ObjectIdentifier{si.DigestAlgorithm.Algorithm, si.DigestEncryptionAlgorithm.Algorithm} {
		if weak := weakOID(alg); weak != "" {
			r.Verdict = WeakAlgorithm
			r.Reason = fmt.Sprintf("signer %q (issuer %q) signed with %s, which is broken: ask the vendor for a SHA-256 (or stronger) signature", r.Signer, issuerName(leaf), weak)
			return r
		}
	}
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
	if why := signingUsage(leaf, o.usages); why != "" {
		r.Verdict = WrongUsage
		r.Reason = fmt.Sprintf("signer %q (issuer %q) %s", r.Signer, issuerName(leaf), why)
		return r
	}
	return verifyChain(r, leaf, p7.Certificates, t, now, o)
}

// verifyChain builds the signer's chain with crypto/x509 and, when it
// fails, says which link broke and why.
func verifyChain(r Result, leaf *x509.Certificate, carried []*x509.Certificate, t Trust, now time.Time, o verifyOptions) Result {
	inter := x509.NewCertPool()
	var pool []*x509.Certificate
	for _, c := range append(slices.Clone(carried), t.Extra...) {
		if !c.Equal(leaf) {
			inter.AddCert(c)
			pool = append(pool, c)
		}
	}
	roots := t.Roots
	if roots == nil {
		roots = x509.NewCertPool()
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: o.usages})
	if err == nil {
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
	path := walkUp(leaf, pool)
	var cie x509.CertificateInvalidError
	var uae x509.UnknownAuthorityError
	switch {
	case errors.As(err, &cie) && cie.Reason == x509.Expired:
		r.Verdict = Expired
		r.Reason = fmt.Sprintf("certificate %q in the chain of %q is expired or not yet valid", name(cie.Cert), r.Signer)
	case errors.As(err, &cie) && cie.Reason == x509.IncompatibleUsage:
		r.Verdict = WrongUsage
		r.Reason = fmt.Sprintf("the chain of %q does not allow signing for %s: %s", r.Signer, usageNames(o.usages), chainUsage(path, o.usages))
	case errors.As(err, &uae):
		return diagnose(r, path, roots, now, err)
	default:
		r.Verdict = InvalidChain
		r.Reason = fmt.Sprintf("the chain of %q is not valid: %v", r.Signer, err)
	}
	return r
}

// diagnose explains an x509.UnknownAuthorityError: crypto/x509 reports a
// link whose signature check fails (an issuer that is not a CA, a SHA-1 or
// MD5 certificate) as an unknown authority with an unexported hint, so the
// path is walked again, tolerating what broke, to name the link. Only a
// path whose top is not issued by a trusted root is UnknownAuthority.
func diagnose(r Result, path []*x509.Certificate, roots *x509.CertPool, now time.Time, verr error) Result {
	for _, c := range path {
		if weak := weakCertAlgorithm(c); weak != "" {
			r.Verdict = WeakAlgorithm
			r.Reason = fmt.Sprintf("certificate %q in the chain of %q is signed with %s by %q, which is broken", name(c), r.Signer, weak, issuerName(c))
			return r
		}
	}
	for _, c := range path[1:] {
		if now.After(c.NotAfter) || now.Before(c.NotBefore) {
			r.Verdict = Expired
			r.Reason = fmt.Sprintf("certificate %q in the chain of %q is valid %s to %s, not now", name(c), r.Signer,
				c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly))
			return r
		}
	}
	for i := 1; i < len(path); i++ {
		child, parent := path[i-1], path[i]
		if err := child.CheckSignatureFrom(parent); err != nil {
			r.Verdict = InvalidChain
			r.Reason = fmt.Sprintf("%q may not have issued %q in the chain of %q: %v", name(parent), name(child), r.Signer, err)
			return r
		}
		if below := i - 1; parent.BasicConstraintsValid && parent.MaxPathLen >= 0 && below > parent.MaxPathLen {
			r.Verdict = InvalidChain
			r.Reason = fmt.Sprintf("in the chain of %q: %v: %q allows %d intermediate(s) below it, the chain has %d", r.Signer,
				x509.CertificateInvalidError{Cert: parent, Reason: x509.TooManyIntermediates}, name(parent), parent.MaxPathLen, below)
			return r
		}
	}
	top := path[len(path)-1]
	var uae x509.UnknownAuthorityError
	_, err := top.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil || !errors.As(err, &uae) || uae.Error() != (x509.UnknownAuthorityError{Cert: uae.Cert}).Error() {
		// The top is issued by a trusted root (or the root itself was
		// refused): the chain breaks somewhere crypto/x509 alone can say.
		if err == nil {
			err = verr
		}
		r.Verdict = InvalidChain
		r.Reason = fmt.Sprintf("the chain of %q is not valid: %v", r.Signer, err)
		return r
	}
	r.Verdict = UnknownAuthority
	r.Reason = fmt.Sprintf("signature by %q is sound, but its chain stops at %q, issued by %q, which is not in the trust store",
		r.Signer, name(top), issuerName(top))
	for _, c := range path {
		r.Chain = append(r.Chain, name(c))
	}
	return r
}

// signingUsage says why a signer may not sign ("" when it may): its key
// usage must allow digitalSignature (or nonRepudiation), and its extended
// key usage, when it has one, one of the wanted usages.
func signingUsage(c *x509.Certificate, wanted []x509.ExtKeyUsage) string {
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return "has no digitalSignature key usage"
	}
	if usable(c, wanted) {
		return ""
	}
	return fmt.Sprintf("may not sign: its extended key usage is %s, not %s", ekuNames(c), usageNames(wanted))
}

// usable reports whether c's extended key usage allows one of wanted; a
// certificate without one allows anything, as RFC 5280 and crypto/x509 say.
func usable(c *x509.Certificate, wanted []x509.ExtKeyUsage) bool {
	if slices.Contains(wanted, x509.ExtKeyUsageAny) || len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny || slices.Contains(wanted, u) {
			return true
		}
	}
	return false
}

// chainUsage names the certificate of path, from the top down, at which
// no wanted usage is left, as crypto/x509's checkChainForKeyUsage narrows.
func chainUsage(path []*x509.Certificate, wanted []x509.ExtKeyUsage) string {
	left := slices.Clone(wanted)
	for i := len(path) - 1; i >= 0; i-- {
		c := path[i]
		if len(c.ExtKeyUsage)+len(c.UnknownExtKeyUsage) == 0 || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
			continue
		}
		left = slices.DeleteFunc(left, func(u x509.ExtKeyUsage) bool { return !slices.Contains(c.ExtKeyUsage, u) })
		if len(left) == 0 {
			return fmt.Sprintf("%q is limited to %s", name(c), ekuNames(c))
		}
	}
	return "no certificate on the chain allows every certificate below it to sign"
}

func ekuNames(c *x509.Certificate) string {
	var have []string
	for _, u := range c.ExtKeyUsage {
		have = append(have, u.String())
	}
	for _, u := range c.UnknownExtKeyUsage {
		have = append(have, u.String())
	}
	return strings.Join(have, ", ")
}

func usageNames(us []x509.ExtKeyUsage) string {
	var s []string
	for _, u := range us {
		s = append(s, u.String())
	}
	return strings.Join(s, " or ")
}

// weakOIDs are digest and signature algorithms of a SignerInfo that
// collisions have broken.
var weakOIDs = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, "SHA-1"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}, "MD5"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 4}, "MD4"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 2}, "MD2"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, "SHA-1 with RSA"},
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 29}, "SHA-1 with RSA"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}, "MD5 with RSA"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 3}, "MD4 with RSA"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 2}, "MD2 with RSA"},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}, "ECDSA with SHA-1"},
	{asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 3}, "DSA with SHA-1"},
}

func weakOID(oid asn1.ObjectIdentifier) string {
	for _, w := range weakOIDs {
		if oid.Equal(w.oid) {
			return w.name
		}
	}
	return ""
}

// weakCertAlgorithm names a broken algorithm c is signed with ("" when
// none); a self-signed certificate's own signature does not count.
func weakCertAlgorithm(c *x509.Certificate) string {
	if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
		return ""
	}
	switch a := c.SignatureAlgorithm; a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return a.String()
	}
	return ""
}

// parentOf finds the certificate in pool that issued c, or nil. It checks
// only names and the signature (SHA-1 included), so that diagnose can walk
// a path that crypto/x509 refused and say why.
func parentOf(c *x509.Certificate, pool []*x509.Certificate) *x509.Certificate {
	for _, p := range pool {
		if p.Equal(c) || !bytes.Equal(p.RawSubject, c.RawIssuer) {
			continue
		}
		if p.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
			return p
		}
	}
	return nil
}

// walkUp follows issuers through pool as far as it goes: c first.
func walkUp(c *x509.Certificate, pool []*x509.Certificate) []*x509.Certificate {
	path := []*x509.Certificate{c}
	for {
		p := parentOf(c, pool)
		if p == nil || slices.ContainsFunc(path, p.Equal) {
			return path
		}
		path = append(path, p)
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
