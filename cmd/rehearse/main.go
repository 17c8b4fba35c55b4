// Command rehearse runs upgrade dress rehearsals against sandboxed copies of
// production described by compose files.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/runs"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	runs.WatchdogMain() // serves as the watchdog of the runs it starts
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// SIGINT and SIGTERM cancel the context; commands tear down what they
	// started before returning.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Once the first has cancelled it, a second signal ends the process
	// at once (what it leaves, its watchdog removes).
	context.AfterFunc(ctx, stop)
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.Is(err, errNotTrusted) {
		return exitFailure // the verdict is the output
	}
	fmt.Fprintln(os.Stderr, "rehearse:", err)
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "rehearse",
		Short:         "Upgrade dress rehearsals on sandboxed copies of production",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newUp(), newDown(), newGC(), newImages(), newRun(), newSteps(), newVerify(), newPreflight(), newVersion())
	root.AddCommand(newReport())
	return root
}

// exactArgs is cobra.ExactArgs reported as a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
