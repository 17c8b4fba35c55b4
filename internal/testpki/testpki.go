// Package testpki generates the vendor PKI of the bundled world: a CA
// rotation with a cross-signed chain and a code-signing release signer (EKU
// codeSigning, as vendors are issued), plus the broken signers and chains
// tests need. Every key is generated on the spot; none is ever committed.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
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
	Vendor      = "vendor.pem"      // the release signer (EKU codeSigning), issued under the new root
	VendorKey   = "vendor.key"      //
	Second      = "second.pem"      // another signer under the new root (EKU codeSigning, emailProtection), for two-signer signatures
	SecondKey   = "second.key"      //
	Expired     = "expired.pem"     // a signer whose validity ended
	ExpiredKey  = "expired.key"     //
	WrongUsage  = "wrong-usage.pem" // a signer for TLS servers, not for signing
	WrongKey    = "wrong-usage.key" //
	Stranger    = "stranger.pem"    // self-signed by somebody else
	StrangerKey = "stranger.key"    //

	TLSCA          = "tls-ca.pem"        // an intermediate CA under the new root limited to serverAuth
	TLSCASigner    = "tls-ca-signer.pem" // a signer (EKU codeSigning, emailProtection) under TLSCA
	TLSCASignerKey = "tls-ca-signer.key" //
	NotCA          = "not-ca.pem"        // an end-entity certificate under the new root (CA:FALSE) used as an issuer
	NotCASigner    = "not-ca-signer.pem" // a signer (EKU codeSigning, emailProtection) issued by NotCA
	NotCASignerKey = "not-ca-signer.key" //
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
	var made [11]*ecdsa.PrivateKey
	for i := range made {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generate a key: %w", err)
		}
		made[i] = k
	}
	oldKey, newKey, vendorKey, expiredKey, wrongKey, strangerKey := made[0], made[1], made[2], made[3], made[4], made[5]
	secondKey, tlsSignerKey, notCASignerKey, tlsCAKey, notCAKey := made[6], made[7], made[8], made[9], made[10]
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
	// What vendors are issued for signing software; openssl 3.0's cms
	// -verify has no purpose for it (use -purpose any).
	vendor, err := newCert(signerTemplate(VendorName, now.AddDate(0, -1, 0), now.AddDate(2, 0, 0), x509.ExtKeyUsageCodeSigning), newCA, vendorKey)
	if err != nil {
		return err
	}
	// The signers below carry emailProtection too, so that openssl's
	// default purpose (smimesign) is a meaningful reference for them.
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageEmailProtection}
	second, err := newCert(signerTemplate("Billing Vendor Releases B", now.AddDate(0, -1, 0), now.AddDate(2, 0, 0), both...), newCA, secondKey)
	if err != nil {
		return err
	}
	tlsTmpl := caTemplate("Billing Vendor TLS CA", now.AddDate(0, -1, 0), now.AddDate(5, 0, 0))
	tlsTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tlsCA, err := newCert(tlsTmpl, newCA, tlsCAKey)
	if err != nil {
		return err
	}
	tlsSigner, err := newCert(signerTemplate("Billing Vendor Releases via TLS CA", now.AddDate(0, -1, 0), now.AddDate(2, 0, 0), both...), &issuer{tlsCA, tlsCAKey}, tlsSignerKey)
	if err != nil {
		return err
	}
	notCATmpl := signerTemplate("Billing Vendor Build Host", now.AddDate(0, -1, 0), now.AddDate(2, 0, 0), both...)
	notCATmpl.BasicConstraintsValid = true // CA:FALSE, stated
	notCATmpl.KeyUsage |= x509.KeyUsageCertSign
	notCA, err := newCert(notCATmpl, newCA, notCAKey)
	if err != nil {
		return err
	}
	notCASigner, err := newCert(signerTemplate("Billing Vendor Releases via Build Host", now.AddDate(0, -1, 0), now.AddDate(2, 0, 0), both...), &issuer{notCA, notCAKey}, notCASignerKey)
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
	certs := map[string]*x509.Certificate{OldRoot: oldRoot, NewRoot: newRoot, Cross: cross, Vendor: vendor, Second: second,
		Expired: expired, WrongUsage: wrong, Stranger: stranger, TLSCA: tlsCA, TLSCASigner: tlsSigner, NotCA: notCA, NotCASigner: notCASigner}
	for name, c := range certs {
		if err := writePEM(filepath.Join(dir, name), "CERTIFICATE", c.Raw, 0o644); err != nil {
			return err
		}
	}
	keys := map[string]*ecdsa.PrivateKey{VendorKey: vendorKey, SecondKey: secondKey, ExpiredKey: expiredKey, WrongKey: wrongKey,
		StrangerKey: strangerKey, TLSCASignerKey: tlsSignerKey, NotCASignerKey: notCASignerKey}
	for name, k := range keys {
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
