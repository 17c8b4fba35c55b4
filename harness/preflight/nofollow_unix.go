//go:build unix

package preflight

import "syscall"

const oNoFollow = syscall.O_NOFOLLOW
