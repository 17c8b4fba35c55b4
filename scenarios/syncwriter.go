package scenarios

import (
	"io"
	"sync"
)

// syncWriter serialises writes to a scenario's log: the environment's
// progress (services start in parallel) and the heals of faults armed for
// a while (in the background) write to it at the same time as the steps.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
