package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
)

// Digest is the sha256, in hex, of everything of the dataset that makes
// what Load writes: GeneratorVersion, the bytes of its definition file
// (generators, seed, service, database) as Parse read them (not the file
// as it is now: the spec is what loads), of its schema and of every dump
// file, each with its name, in the order Load runs them. Two specs with
// the same digest load the same rows at the same scale into the same
// starting database; a cache of seeded states keys on it (with the scale,
// the images and the database's state before the load).
func (s *Spec) Digest() (string, error) {
	if s.def == nil {
		return "", fmt.Errorf("dataset %s: digest: the spec was not read by Parse or Find", s.Name)
	}
	h := sha256.New()
	digestPart(h, "generator version", []byte(GeneratorVersion))
	digestPart(h, FileName, s.def)
	for _, f := range append([]string{s.Schema}, s.Files...) {
		if f == "" {
			continue
		}
		b, err := s.readFile(f, true)
		if err != nil {
			return "", fmt.Errorf("dataset %s: digest of %s: %w", s.Name, f, err)
		}
		digestPart(h, f, b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digestPart hashes a name and its bytes, each length-prefixed, so that
// no two sequences of parts hash alike.
func digestPart(h hash.Hash, name string, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(name)))
	h.Write(n[:])
	h.Write([]byte(name))
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
