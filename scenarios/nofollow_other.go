//go:build !unix

package scenarios

const oNoFollow = 0
