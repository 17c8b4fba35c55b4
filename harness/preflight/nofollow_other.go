//go:build !unix

package preflight

const oNoFollow = 0
