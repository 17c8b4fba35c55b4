// Package testpki generates the vendor PKI of the bundled world: a CA
// rotation with a cross-signed chain, plus the broken signers tests need.
// Every key is generated on the spot; none is ever committed.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Files written by Generate, in dir.
const (
	OldRoot     = "old-root.pem"    // the root the customer trusts
	NewRoot     = "new-root.pem"    // the vendor's rotated root
	Cross       = "cross-chain.pem" // the new root's key, certified by the old root
	Vendor      = "vendor.pem"      // the release signer, issued under the new root
	VendorKey   = "vendor.key"      //
	Expired     = "expired.pem"     // a signer whose validity ended
	ExpiredKey  = "expired.key"     //
	WrongUsage  = "wrong-usage.pem" // a signer for TLS servers, not for signing
	WrongKey    = "wrong-usage.key" //
	Stranger    = "stranger.pem"    // self-signed by somebody else
	StrangerKey = "stranger.key"    //
)

// Common names, as reasons print them.
const (
	OldRootName = "Billing Vendor Root CA 2019"
	NewRootName = "Billing Vendor Root CA 2026"
	VendorName  = "Billing Vendor Releases"
)

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64 = time.Now().UnixNano()

func newCert(tmpl *x509.Certificate, parent *issuer, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func caTemplate(cn string, from, to time.Time) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: []string{"Billing Vendor"}},
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
}

func signerTemplate(cn string, from, to time.Time, eku ...x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: []string{"Billing Vendor"}},
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku}
}

// Generate writes the PKI into dir.
func Generate(dir string) error {
	now := time.Now()
	key := func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	oldKey, newKey := key(), key()
	oldRoot, err := newCert(caTemplate(OldRootName, now.AddDate(-7, 0, 0), now.AddDate(3, 0, 0)), nil, oldKey)
	if err != nil {
		return err
	}
	newTmpl := caTemplate(NewRootName, now.AddDate(0, -1, 0), now.AddDate(10, 0, 0))
	newRoot, err := newCert(newTmpl, nil, newKey)
	if err != nil {
		return err
	}
	// The same subject and key as the new root, issued by the old root.
	cross, err := newCert(caTemplate(NewRootName, now.AddDate(0, -1, 0), now.AddDate(3, 0, 0)), &issuer{oldRoot, oldKey}, newKey)
	if err != nil {
		return err
	}
	newCA := &issuer{newRoot, newKey}
	vendorKey, expiredKey, wrongKey, strangerKey := key(), key(), key(), key()
	// emailProtection is what openssl cms -verify's default purpose (smimesign) asks of a signer.
	vendor, err := newCert(signerTemplate(VendorName, now.AddDate(0, -1, 0), now.AddDate(2, 0, 0), x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageCodeSigning), newCA, vendorKey)
	if err != nil {
		return err
	}
	expired, err := newCert(signerTemplate("Billing Vendor Releases 2024", now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1), x509.ExtKeyUsageEmailProtection), newCA, expiredKey)
	if err != nil {
		return err
	}
	wrong, err := newCert(signerTemplate("billing-vendor.example", now.AddDate(0, -1, 0), now.AddDate(1, 0, 0), x509.ExtKeyUsageServerAuth), newCA, wrongKey)
	if err != nil {
		return err
	}
	strangerTmpl := signerTemplate("Somebody Else Releases", now.AddDate(0, -1, 0), now.AddDate(1, 0, 0), x509.ExtKeyUsageEmailProtection)
	stranger, err := newCert(strangerTmpl, nil, strangerKey)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, c := range map[string]*x509.Certificate{OldRoot: oldRoot, NewRoot: newRoot, Cross: cross, Vendor: vendor, Expired: expired, WrongUsage: wrong, Stranger: stranger} {
		if err := writePEM(filepath.Join(dir, name), "CERTIFICATE", c.Raw, 0o644); err != nil {
			return err
		}
	}
	for name, k := range map[string]*ecdsa.PrivateKey{VendorKey: vendorKey, ExpiredKey: expiredKey, WrongKey: wrongKey, StrangerKey: strangerKey} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name), "PRIVATE KEY", der, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
