//go:build unix

package report

import "syscall"

// oNoFollow opens without following a final link and without blocking on
// a fifo: output directories may be CI artifacts from another machine.
const oNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
