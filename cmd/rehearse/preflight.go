package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/preflight"
	"github.com/rehearse/rehearse/harness/upgrade"
)

// errSilent is exit 1 with nothing more printed: the output (a verdict,
// the findings) says it. main.go prints nothing for errNotTrusted, so it
// wraps that.
var errSilent = fmt.Errorf("reported already: %w", errNotTrusted)

// errPreflightErrors is exit 1: the findings are the output.
var errPreflightErrors = fmt.Errorf("preflight found errors: %w", errSilent)

func newPreflight() *cobra.Command {
	var (
		file, matrix, format, trust, signature, installed string
		chains, usages, allow, profiles                   []string
		noVerify, up                                      bool
	)
	cmd := &cobra.Command{
		Use:   "preflight PACKAGE [-f COMPOSE] [--matrix FILE] [--format text|json|sarif]",
		Short: "Read an upgrade package's hazards, and its environment's, before anything runs",
		Long: `Preflight reads the package (a signed .zip, .tar.gz or .tgz, verified with --trust as
rehearse verify does, or an unpacked directory, which has no signature to verify) with
real parsers: scripts, SQL migrations, cron and timer files, credentials, configuration
templates against a deprecation matrix. With -f it also reads the environment the package
is for, from the planned images (rehearse images builds them; nothing starts), or with
--up from the environment started for the purpose and removed after: the host's units, its
installed version, its configuration files. Exit 0 when no finding is an error, 1 otherwise,
2 for a usage error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg := args[0]
			if !slices.Contains([]string{"text", "json", "sarif"}, format) {
				return usageError{fmt.Errorf("preflight: --format must be text, json or sarif, not %q", format)}
			}
			if up && file == "" {
				return usageError{errors.New("preflight: --up needs -f COMPOSE")}
			}
			st, err := os.Stat(pkg)
			if err != nil {
				return usageError{fmt.Errorf("preflight: package %w", err)}
			}
			var opts []preflight.Option
			if len(allow) > 0 {
				opts = append(opts, preflight.WithAllow(allow...))
			}
			if installed != "" {
				opts = append(opts, preflight.WithInstalledVersion(installed))
			}
			if file != "" {
				// Up front: a missing compose file is a usage error, not a
				// failure found after the package was read.
				if st, err := os.Stat(file); err != nil {
					return usageError{fmt.Errorf("preflight: compose file %w", err)}
				} else if !st.Mode().IsRegular() {
					return usageError{fmt.Errorf("preflight: compose file %s is not a regular file", file)}
				}
				if matrix == "" {
					matrix = preflight.MatrixBeside(file)
				}
			}
			if matrix != "" {
				m, err := preflight.LoadMatrix(matrix)
				if err != nil {
					return usageError{fmt.Errorf("preflight: %w", err)}
				}
				opts = append(opts, preflight.WithMatrix(m))
			}
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			var verify func(*upgrade.Package) error
			if st.IsDir() {
				fmt.Fprintf(stderr, "preflight: %s is a directory: no signature to verify; every other check applies\n", pkg)
			} else if noVerify {
				fmt.Fprintf(stderr, "preflight: signature of %s not verified (--no-verify)\n", pkg)
			} else {
				if trust == "" {
					return usageError{errors.New("preflight: --trust FILE|DIR is required for an archive (or --no-verify)")}
				}
				t, vopts, err := trustFlags("preflight", trust, chains, usages)
				if err != nil {
					return err
				}
				if signature == "" {
					signature = pkg + ".p7s"
				}
				verify = func(p *upgrade.Package) error {
					sig, err := upgrade.ReadSignature(signature)
					if err != nil {
						fmt.Fprintf(stderr, "preflight: malformed: signature %s: %v\n", signature, err)
						return errSilent
					}
					if r := p.Verify(sig, t, vopts...); r.Verdict != upgrade.Trusted {
						fmt.Fprintf(stderr, "preflight: %s: %s\n", r.Verdict, r.Reason)
						return errSilent
					}
					return nil
				}
			}
			p, err := upgrade.Open(pkg)
			if err != nil {
				return err
			}
			defer p.Close()
			if verify != nil {
				if err := verify(p); err != nil {
					return err // an untrusted package is not read further
				}
			}
			if file != "" {
				inv, err := preflightInventory(ctx, file, profiles, up, stderr)
				if err != nil {
					return err
				}
				fmt.Fprintf(stderr, "preflight: environment from the %s\n", inv.Source)
				opts = append(opts, preflight.WithInventory(inv))
			} else if installed != "" {
				// --installed-version: the upgrade path is checked all the same.
				fmt.Fprintln(stderr, "preflight: no environment (-f): units and the environment's configuration are not checked")
			} else {
				fmt.Fprintln(stderr, "preflight: no environment (-f): units, the environment's configuration and the installed version are not checked")
			}
			if matrix == "" {
				fmt.Fprintln(stderr, "preflight: no deprecation matrix (--matrix): deprecated-config is not checked")
			}
			fs, err := preflight.Check(ctx, p, opts...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch format {
			case "json":
				err = preflight.WriteJSON(out, fs)
			case "sarif":
				err = preflight.WriteSARIF(out, fs, preflight.SARIFAnchor(p))
			default:
				writePreflightText(out, fs)
			}
			if err != nil {
				return err
			}
			if preflight.HasErrors(fs) {
				return errPreflightErrors
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the compose file of the environment the package is for")
	f.StringSliceVar(&profiles, "profile", nil, "compose profiles to activate")
	f.BoolVar(&up, "up", false, "start the environment to read its inventory (versions need the service running), and remove it after")
	f.StringVar(&matrix, "matrix", "", "the deprecation matrix (default: "+preflight.MatrixFile+" beside the compose file, when there is one)")
	f.StringVar(&format, "format", "text", "output format: text, json or sarif")
	f.StringArrayVar(&allow, "allow", nil, "an external host the package may call (.example.com: its subdomains too); repeatable")
	f.StringVar(&installed, "installed-version", "", "the version installed on the package's service (default: the environment's)")
	f.StringVar(&trust, "trust", "", "trusted root certificates for an archive's signature: a PEM file or a directory of them")
	f.StringArrayVar(&chains, "chain", nil, "extra chain certificates (PEM); repeatable")
	f.StringVar(&signature, "signature", "", "the detached signature (default PACKAGE.p7s)")
	f.StringSliceVar(&usages, "usage", nil, "what the signer's chain must allow: code-signing, smime or any; repeatable (default code-signing or smime)")
	f.BoolVar(&noVerify, "no-verify", false, "read an archive without verifying its signature")
	return cmd
}

// preflightInventory reads the environment: from the planned images, or
// (up) from the environment started for it and removed after.
func preflightInventory(ctx context.Context, file string, profiles []string, up bool, progress io.Writer) (preflight.Inventory, error) {
	plan, err := loadPlan(ctx, file, profiles)
	if err != nil {
		return preflight.Inventory{}, err
	}
	if !up {
		return preflight.FromImages(ctx, plan)
	}
	e, err := env.Start(ctx, plan, env.WithProgress(progress))
	if err != nil {
		return preflight.Inventory{}, err
	}
	inv, err := preflight.FromEnvironment(ctx, e)
	return inv, errors.Join(err, e.Down(context.WithoutCancel(ctx)))
}

// writePreflightText prints one finding a line, as compilers do
// (file:line: severity rule: message), its fix below, then a count.
func writePreflightText(w io.Writer, fs []preflight.Finding) {
	count := map[preflight.Severity]int{}
	for _, f := range fs {
		where := f.File
		if where == "" {
			where = "(environment)"
		}
		if f.Line > 0 {
			where = fmt.Sprintf("%s:%d", where, f.Line)
		}
		fmt.Fprintf(w, "%s: %s %s: %s\n", where, f.Severity, f.Rule, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", f.Fix)
		}
		count[f.Severity]++
	}
	parts := []string{}
	for _, s := range []preflight.Severity{preflight.Error, preflight.Warning, preflight.Info} {
		parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
	}
	fmt.Fprintf(w, "%d findings: %s\n", len(fs), strings.Join(parts, ", "))
}
