// Package engine connects to the Docker engine that every rehearsal runs on.
//
// It is the one place that decides how the harness reaches the engine, so
// that images, environments and garbage collection all agree.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// ErrNoEngine means no Docker engine answered.
var ErrNoEngine = errors.New("no Docker engine answered")

// Connect returns a client for the engine named by DOCKER_HOST (or the
// default socket), after checking that it answers within a few seconds.
//
// It also fixes the testcontainers-go settings the harness relies on: no Ryuk
// reaper (its image cannot be pulled; the harness owns cleanup) and the
// engine's published ports reached through 127.0.0.1.
func Connect(ctx context.Context) (*client.Client, error) {
	ConfigureTestcontainers()
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

// ConfigureTestcontainers sets the environment testcontainers-go reads, unless
// the user set it already.
func ConfigureTestcontainers() {
	setDefault("TESTCONTAINERS_RYUK_DISABLED", "true")
	setDefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	if os.Getenv("REHEARSE_DEBUG") == "" {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
}

func setDefault(key, value string) {
	if _, ok := os.LookupEnv(key); !ok {
		os.Setenv(key, value)
	}
}
