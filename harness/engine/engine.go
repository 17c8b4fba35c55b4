// Package engine connects to the Docker engine that every rehearsal runs on.
//
// It is the one place that decides how the harness reaches the engine, so
// that images, environments and garbage collection all agree.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
)

// ErrNoEngine means no Docker engine answered.
var ErrNoEngine = errors.New("no Docker engine answered")

// Connect returns a client for the engine named by DOCKER_HOST (or the
// default socket), after checking that it answers within a few seconds and
// agreeing on an API version (engine 20.10 speaks 1.41).
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s: %v", ErrNoEngine, cli.DaemonHost(), err)
	}
	return cli, nil
}
