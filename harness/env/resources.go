package env

import (
	"context"
	"fmt"
	"math"

	"github.com/moby/moby/client"
)

// WidestMemory is the memory (and memory plus swap) limit Restore sets for
// a limit that was unset: the kernel clamps it to its own maximum and reads
// it back as no limit at all (cgroup v1 memory.limit_in_bytes
// 9223372036854771712, v2 memory.max "max").
const WidestMemory int64 = math.MaxInt64

// Limits names limits of Resources: a squeeze changes some and restores
// exactly those.
type Limits uint8

const (
	MemoryLimits Limits = 1 << iota // Memory and MemorySwap
	CPULimit                        // NanoCPUs
	AllLimits    = MemoryLimits | CPULimit
)

// Restore sets the container's limits named by which back to r, as
// Resources read them before a change, and leaves the others alone (a
// memory squeeze's heal never sets a CPU quota, nor a CPU squeeze's a
// memory limit). The engine's update cannot unset a limit (0 means
// "unchanged" to it, and it refuses -1 for memory and CPUs), so a limit
// that r has unset is set to the widest the engine takes instead: memory
// and memory plus swap to WidestMemory (for the kernel exactly no limit;
// on cgroup v2 it leaves the container no swap), CPUs to every CPU of the
// engine's host (a CPU quota that never throttles). Resources then reads
// those values, not 0; Unrestricted tells them apart from a real limit.
func (c *Container) Restore(ctx context.Context, r Resources, which Limits) error {
	var w Resources
	if which&MemoryLimits != 0 {
		w.Memory, w.MemorySwap = r.Memory, r.MemorySwap
		if w.Memory == 0 {
			w.Memory = WidestMemory
		}
		if w.MemorySwap <= 0 {
			// -1 (unlimited swap) is dropped by the engine on its way to the
			// runtime, and a memory limit above the old memory plus swap
			// limit then fails: the widest value states it.
			w.MemorySwap = WidestMemory
		}
	}
	if which&CPULimit != 0 {
		w.NanoCPUs = r.NanoCPUs
		if w.NanoCPUs == 0 {
			n, err := c.hostCPUs(ctx)
			if err != nil {
				return c.fail("restore resources of", err)
			}
			w.NanoCPUs = n * 1e9
		}
	}
	if w == (Resources{}) {
		return nil
	}
	return c.Update(ctx, w)
}

// Unrestricted reports whether the container's limits named by which
// restrict it no more than r does: each is the same as r's, or r's is
// unset and the current one is the widest that Restore sets.
func (c *Container) Unrestricted(ctx context.Context, r Resources, which Limits) (bool, error) {
	cur, err := c.Resources(ctx)
	if err != nil {
		return false, err
	}
	same := func(cur, was, widest int64) bool { return cur == was || (was <= 0 && cur == widest) }
	if which&MemoryLimits != 0 && !(same(cur.Memory, r.Memory, WidestMemory) && same(cur.MemorySwap, r.MemorySwap, WidestMemory)) {
		return false, nil
	}
	if which&CPULimit != 0 {
		n, err := c.hostCPUs(ctx)
		if err != nil {
			return false, c.fail("read resources of", err)
		}
		if !same(cur.NanoCPUs, r.NanoCPUs, n*1e9) {
			return false, nil
		}
	}
	return true, nil
}

// hostCPUs is how many CPUs the engine's host has.
func (c *Container) hostCPUs(ctx context.Context) (int64, error) {
	info, err := c.cli().Info(ctx, client.InfoOptions{})
	if err != nil {
		return 0, fmt.Errorf("engine info: %w", err)
	}
	if info.Info.NCPU < 1 {
		return 0, fmt.Errorf("engine info: the engine reports %d CPUs", info.Info.NCPU)
	}
	return int64(info.Info.NCPU), nil
}
