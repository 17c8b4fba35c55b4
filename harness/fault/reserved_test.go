package fault

import (
	"slices"
	"testing"

	"github.com/rehearse/rehearse/harness/sandbox"
)

// A compose file may not build into the fault helper's image: the sandbox's
// list of reserved images names it.
func TestImageIsReserved(t *testing.T) {
	if !slices.Contains(sandbox.ReservedImages, Image) {
		t.Errorf("sandbox.ReservedImages %v does not hold the fault helper image %s", sandbox.ReservedImages, Image)
	}
}
