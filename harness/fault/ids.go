package fault

import (
	"crypto/rand"
	"encoding/hex"
)

// newID is a random id for one fault's rules, proxies or files: 8 hex
// digits, so that two faults of a run never share a tag or a file name.
func newID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
