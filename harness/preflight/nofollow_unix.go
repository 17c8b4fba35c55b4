//go:build unix

package preflight

import "syscall"

// oNoFollow opens without following a final link and without blocking on
// a fifo swapped in after the walk.
const oNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
