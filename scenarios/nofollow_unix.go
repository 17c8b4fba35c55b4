//go:build unix

package scenarios

import "syscall"

// oNoFollow opens without following a final link and without blocking on
// a fifo: an output directory may hold anything a user put there.
const oNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
