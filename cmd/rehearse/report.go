package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/report"
)

// errReportNotPassed is exit 1 when the report shows a scenario that did
// not pass; the counts are printed already.
var errReportNotPassed = fmt.Errorf("scenarios did not pass: %w", errSilent)

func newReport() *cobra.Command {
	var (
		out     string
		formats []string
	)
	cmd := &cobra.Command{
		Use:   "report DIR... [--out DIR] [--format html,junit,markdown]",
		Short: "Render the reports of rehearse run again from its output directory, or merge shards' directories into one",
		Long: `Report reads what rehearse run --out DIR left (DIR/run.json and DIR/timelines/*.json)
and writes the reports again: report.html, rehearse.xml (JUnit, each scenario's timeline
in system-out) and summary.md (Markdown).

Given several directories, as left by rehearse run --shard I/N on N workers, it merges
them: they must be the shards of one run (same scenarios, same N, same tags), each once
and all present, and no shard may have left a scenario it was given without a record.
Each directory's records must match its run.json: a scenario it selected without a record,
or a record of a scenario it did not select (left from an earlier run), is refused.
The merged directory (--out, required then; neither one of the inputs, nor inside one,
nor holding one) also receives the records (timelines/*.json, run.json, and rehearse.json
when every shard wrote cucumber JSON), so it is itself input for rehearse report.
When not every shard wrote cucumber JSON, an earlier rehearse.json in the merged
directory is removed (and said so), rather than left to pass for this report's.

With --format markdown and no --out, the Markdown goes to standard output instead.
When $GITHUB_STEP_SUMMARY is set, the Markdown is also appended to that file, within
900 KiB (GitHub shows at most 1 MiB): its lists are cut where they would pass that,
each ending "… N more scenarios: see report.html / summary.md"; summary.md is whole.

Exit status: 0 when every scenario passed (or was skipped); 1 when a scenario failed or
has an undefined or pending step (as rehearse run, which is strict), a run could not
read or parse a feature file, or a run was interrupted (its run.json says so; the
scenarios it skipped never ran), after the reports are written, so a CI step can gate on
it; 1 when the directories cannot be read or merged (nothing is written then), or on
SIGINT/SIGTERM; 2 for a usage error.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("report: give the output directory of rehearse run (several to merge shards)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, dirs []string) error {
			for _, f := range formats {
				if !slices.Contains(report.Formats, f) {
					return usageError{fmt.Errorf("report: --format must be a list of %s, not %q", strings.Join(report.Formats, ", "), f)}
				}
			}
			if len(formats) == 0 {
				return usageError{errors.New("report: --format is empty")}
			}
			toStdout := out == "" && slices.Equal(formats, []string{report.FormatMarkdown})
			if out == "" && !toStdout {
				if len(dirs) > 1 {
					return usageError{errors.New("report: --out DIR is required when merging several directories")}
				}
				out = dirs[0]
			}
			// Interrupted (SIGINT, SIGTERM: main cancels the context), the
			// loading and writing stop between files.
			ctx := cmd.Context()
			r, err := report.LoadContext(ctx, dirs...)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if toStdout {
				if err := report.Markdown(cmd.OutOrStdout(), r); err != nil {
					return err
				}
			} else {
				if err := report.Write(out, r, report.WithFormats(formats...), report.WithContext(ctx), report.WithNotes(stderr)); err != nil {
					return err
				}
			}
			if err := report.AppendStepSummaryTo(os.Getenv("GITHUB_STEP_SUMMARY"), r); err != nil {
				return err
			}
			fmt.Fprintln(stderr, countsLine(r))
			if !toStdout {
				for _, f := range formats {
					fmt.Fprintf(stderr, "%s: %s\n", f, filepath.Join(out, fileOf[f]))
				}
			}
			if !r.OK() {
				return errReportNotPassed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "write the reports to this directory (default: the one DIR given; required to merge several)")
	f.StringSliceVar(&formats, "format", slices.Clone(report.Formats), "reports to write: html, junit, markdown (markdown alone without --out prints it)")
	return cmd
}

var fileOf = map[string]string{
	report.FormatHTML:     report.HTMLFile,
	report.FormatJUnit:    report.JUnitFile,
	report.FormatMarkdown: report.MarkdownFile,
}

// countsLine is the report in one line: "4 scenarios: 2 passed, 1 failed,
// 1 undefined (2 shards)".
func countsLine(r *report.Report) string {
	c := r.Counts()
	var parts []string
	for _, p := range []struct {
		n    int
		word string
	}{{c.Passed, "passed"}, {c.Failed, "failed"}, {c.Undefined, "undefined"}, {c.Pending, "pending"}, {c.Skipped, "skipped"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.word))
		}
	}
	line := fmt.Sprintf("%d scenarios", c.Total)
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if n := r.Shards(); n > 0 {
		line += fmt.Sprintf(" (%d shards)", n)
	}
	if r.Interrupted() {
		line += "; the run was interrupted: the scenarios it skipped never ran"
	}
	if c.Errors > 0 {
		word := "files"
		if c.Errors == 1 {
			word = "file"
		}
		line += fmt.Sprintf("; %d feature %s could not be read: %s", c.Errors, word, strings.Join(r.Errors(), "; "))
	}
	return line
}
