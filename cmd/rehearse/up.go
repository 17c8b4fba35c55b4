package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
)

func newUp() *cobra.Command {
	var (
		file, runID, format string
		profiles, vars      []string
	)
	cmd := &cobra.Command{
		Use:   "up -f FILE",
		Short: "Start a sandboxed environment from a compose file and leave it running",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("up: -f FILE is required")}
			}
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("up: --format must be text or json, not %q", format)}
			}
			for _, kv := range vars {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					return usageError{fmt.Errorf("up: --env %q is not KEY=VALUE", kv)}
				}
			}
			opts := []env.StartOption{env.WithProgress(cmd.ErrOrStderr())}
			if runID != "" {
				if err := runs.ValidID(runID); err != nil {
					return usageError{err}
				}
				opts = append(opts, env.WithRunID(runID))
			}
			ctx := cmd.Context()
			plan, err := loadPlan(ctx, file, profiles, env.WithEnv(vars...))
			if err != nil {
				return err
			}
			e, err := env.Start(ctx, plan, opts...)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("interrupted; everything started was removed: %w", err)
				}
				return err
			}
			if err := e.Keep(context.WithoutCancel(ctx)); err != nil {
				return errors.Join(err, e.Down(context.WithoutCancel(ctx)))
			}
			if format == "json" {
				return writeUpJSON(cmd.OutOrStdout(), e)
			}
			writeUpText(cmd.OutOrStdout(), file, e)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "compose file")
	cmd.Flags().StringVar(&runID, "run-id", "", "run id (default: a fresh random id)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().StringSliceVar(&profiles, "profile", nil, "compose profiles to activate")
	cmd.Flags().StringArrayVar(&vars, "env", nil, "KEY=VALUE for ${KEY} in the compose file, over its .env (repeatable; the process environment is never used)")
	return cmd
}

func loadPlan(ctx context.Context, file string, profiles []string, opts ...env.LoadOption) (*env.Plan, error) {
	return env.LoadPlan(ctx, file, append([]env.LoadOption{env.WithProfiles(profiles...)}, opts...)...)
}

type upJSON struct {
	Run      string                 `json:"run"`
	Services map[string]serviceJSON `json:"services"`
}

type serviceJSON struct {
	Container string            `json:"container"`
	Ports     map[string]string `json:"ports"`
}

func writeUpJSON(w io.Writer, e *env.Environment) error {
	out := upJSON{Run: e.RunID, Services: map[string]serviceJSON{}}
	for _, s := range e.Services() {
		out.Services[s.Name] = serviceJSON{Container: s.ContainerID, Ports: s.Ports}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeUpText(w io.Writer, file string, e *env.Environment) {
	fmt.Fprintf(w, "run %s is up (%s)\n", e.RunID, file)
	for _, s := range e.Services() {
		var ports []string
		for _, p := range slices.Sorted(maps.Keys(s.Ports)) {
			ports = append(ports, p+" -> "+s.Ports[p])
		}
		fmt.Fprintf(w, "  %-12s container %.12s  %s\n", s.Name, s.ContainerID, strings.Join(ports, ", "))
	}
	for _, s := range e.Services() {
		fmt.Fprintf(w, "reach %-10s docker exec -it %s bash\n", s.Name+":", s.ContainerName)
	}
	fmt.Fprintf(w, "remove it:        rehearse down --run-id %s\n", e.RunID)
}
