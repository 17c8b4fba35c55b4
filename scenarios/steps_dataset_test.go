package scenarios

import (
	"context"
	"strings"
	"testing"
)

// TestDatasetLoadedScale: a scale of zero rows is refused before anything
// runs, naming the dataset and the scale.
func TestDatasetLoadedScale(t *testing.T) {
	ctx := context.WithValue(context.Background(), worldKey{}, &World{})
	for _, scale := range []string{"0", "0_000", "0,000"} {
		err := datasetLoaded(ctx, "billing", scale)
		if err == nil || !strings.Contains(err.Error(), "billing") || !strings.Contains(err.Error(), "at least 1") {
			t.Errorf("scale %s: %v, want the scale refused", scale, err)
		}
	}
	if err := datasetLoaded(ctx, "billing", "10"); err == nil || strings.Contains(err.Error(), "at least 1") {
		t.Errorf("scale 10: %v, want only the missing environment", err)
	}
}
