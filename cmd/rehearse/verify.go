package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/upgrade"
)

// errNotTrusted is exit 1: the verdict is printed already.
var errNotTrusted = errors.New("package signature not trusted")

// trustFlags reads the trust flags (--trust, --chain, --usage) of
// rehearse verify and rehearse preflight; its errors are usage errors,
// prefixed with the command's name.
func trustFlags(command, trust string, chains, usages []string) (upgrade.Trust, []upgrade.VerifyOption, error) {
	var opts []upgrade.VerifyOption
	if len(usages) > 0 {
		var us []upgrade.Usage
		for _, u := range usages {
			if !slices.Contains(upgrade.Usages, upgrade.Usage(u)) {
				return upgrade.Trust{}, nil, usageError{fmt.Errorf("%s: --usage must be code-signing, smime or any, not %q", command, u)}
			}
			us = append(us, upgrade.Usage(u))
		}
		opts = append(opts, upgrade.WithUsage(us...))
	}
	roots, err := upgrade.LoadTrust(trust)
	if err != nil {
		return upgrade.Trust{}, nil, usageError{fmt.Errorf("%s: trust store %w", command, err)}
	}
	t := upgrade.Trust{Roots: roots}
	for _, c := range chains {
		certs, err := upgrade.LoadCerts(c)
		if err != nil {
			return upgrade.Trust{}, nil, usageError{fmt.Errorf("%s: chain %w", command, err)}
		}
		t.Extra = append(t.Extra, certs...)
	}
	return t, opts, nil
}

func newVerify() *cobra.Command {
	var (
		trust, signature, format string
		chains, usages           []string
	)
	cmd := &cobra.Command{
		Use:   "verify PACKAGE --trust FILE|DIR",
		Short: "Check an upgrade package's detached CMS signature against a trust store",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg := args[0]
			if trust == "" {
				return usageError{errors.New("verify: --trust FILE|DIR is required")}
			}
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("verify: --format must be text or json, not %q", format)}
			}
			if st, err := os.Stat(pkg); err != nil {
				return usageError{fmt.Errorf("verify: package %w", err)}
			} else if st.IsDir() {
				return usageError{fmt.Errorf("verify: package %s is a directory: only an archive's bytes can be signed", pkg)}
			}
			t, opts, err := trustFlags("verify", trust, chains, usages)
			if err != nil {
				return err
			}
			if signature == "" {
				signature = pkg + ".p7s"
			}
			// The package is read once; those bytes are the ones verified.
			res, err := upgrade.VerifyFile(pkg, signature, t, opts...)
			if err != nil {
				return err
			}
			if format == "json" {
				if res.Chain == nil {
					res.Chain = []string{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", res.Verdict, res.Reason)
			}
			if res.Verdict != upgrade.Trusted {
				return errNotTrusted
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&trust, "trust", "", "trusted root certificates: a PEM file or a directory of them")
	cmd.Flags().StringArrayVar(&chains, "chain", nil, "extra chain certificates (PEM), such as a cross-signed intermediate; repeatable")
	cmd.Flags().StringVar(&signature, "signature", "", "the detached signature (default PACKAGE.p7s)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().StringSliceVar(&usages, "usage", nil, "what the signer's chain must allow: code-signing, smime or any (no check); repeatable (default code-signing or smime)")
	return cmd
}
