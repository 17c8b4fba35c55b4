package env

import (
	"context"
	"fmt"
)

// WaitReady waits until the service is ready again, the way Start waited
// for it: healthy when it has a healthcheck, running and settled when it
// has none. A fault that started or restarted the service calls it, so that
// the next step meets a service that answers (or learns it never came back,
// with its log tail and last health check output).
func (s *Service) WaitReady(ctx context.Context) error {
	sp := s.env.Plan.Service(s.Name)
	if sp == nil {
		return fmt.Errorf("service %s: not in the plan of %s", s.Name, s.env.Plan.File)
	}
	return s.env.waitReady(ctx, sp, s.ContainerID, newServiceState())
}
