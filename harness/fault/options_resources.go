package fault

import (
	"fmt"
	"math"
)

// minMemory is the smallest memory limit the engine takes (6MiB).
const minMemory = 6 << 20

// WithCPUs is how many CPUs Squeeze leaves the service: 0.1 is a tenth of
// one CPU's time (a CFS quota), at least 0.01 and at most the engine host's
// CPUs (the engine refuses more). Squeeze only.
func WithCPUs(cpus float64) Option {
	return func(o *options) error {
		if math.IsNaN(cpus) || math.IsInf(cpus, 0) || cpus < 0.01 {
			return fmt.Errorf("cpus %v: at least 0.01", cpus)
		}
		o.cpus = cpus
		o.set = append(o.set, "cpus")
		return nil
	}
}

// WithMemory is the memory limit in bytes that Squeeze sets, swap included
// (the squeezed service cannot swap): at least 6MiB, the engine's minimum.
// Squeeze only.
func WithMemory(bytes int64) Option {
	return func(o *options) error {
		if bytes < minMemory {
			return fmt.Errorf("memory %d bytes: at least %d (6MiB)", bytes, minMemory)
		}
		o.memory = bytes
		o.set = append(o.set, "memory")
		return nil
	}
}
