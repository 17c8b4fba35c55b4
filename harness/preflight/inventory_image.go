package preflight

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/env"
)

// VersionLabel is the image label read for a service's installed version
// when it does not run (the OCI annotation for an image's version).
const VersionLabel = "org.opencontainers.image.version"

// unitDirs are where systemd looks for unit files (systemd.unit(5)): what
// systemctl list-unit-files lists.
var unitDirs = []string{"etc/systemd/system", "run/systemd/system", "lib/systemd/system", "usr/lib/systemd/system", "usr/local/lib/systemd/system"}

// FromImages reads the inventory of a planned environment that is not
// running, from its services' images as the local engine holds them
// (rehearse images builds them; nothing is pulled and no container
// starts): the unit files a systemd service's image holds (what systemctl
// list-unit-files lists there; units a running host makes at boot are not
// seen), its declared configuration files as the image ships them, and
// the installed version from the image's org.opencontainers.image.version
// label or a VERSION or <SERVICE>_VERSION variable of its environment
// (a version command needs the service running).
func FromImages(ctx context.Context, p *env.Plan) (Inventory, error) {
	inv := Inventory{Source: "planned images of " + p.File, Hosts: planHosts(p), Services: map[string]ServiceInventory{}}
	cli, err := engine.Connect(ctx)
	if err != nil {
		return inv, fmt.Errorf("preflight inventory from images: %w", err)
	}
	defer cli.Close()
	for _, sp := range p.Services {
		ref, err := name.ParseReference(sp.Image.Ref)
		if err != nil {
			return inv, fmt.Errorf("preflight inventory: image %q of %s: %w", sp.Image.Ref, sp.Name, err)
		}
		img, err := daemon.Image(ref, daemon.WithClient(cli), daemon.WithContext(ctx), daemon.WithFileBufferedOpener())
		if err != nil {
			return inv, fmt.Errorf("preflight inventory: image %s of %s (rehearse images -f %s builds it): %w", sp.Image.Ref, sp.Name, p.File, err)
		}
		si, err := imageService(img, sp)
		if err != nil {
			return inv, fmt.Errorf("preflight inventory: image %s of %s: %w", sp.Image.Ref, sp.Name, err)
		}
		inv.Services[sp.Name] = si
	}
	return inv, nil
}

// imageService reads one service's inventory from its image.
func imageService(img v1.Image, sp *env.ServicePlan) (ServiceInventory, error) {
	var si ServiceInventory
	cf, err := img.ConfigFile()
	if err != nil {
		return si, err
	}
	si.Version, si.VersionFrom = imageVersion(cf, sp.Name)
	var dirs []string
	if sp.Ext.Config != nil {
		dirs = sp.Ext.Config.Files
	}
	si.Systemd = sp.Ext.Init == "systemd"
	if !si.Systemd && len(dirs) == 0 {
		return si, nil // nothing to read in its file system
	}
	if si.Systemd {
		si.Units = map[string]bool{}
	}
	rc := mutate.Extract(img) // the flattened file system, whiteouts applied
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return si, err
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if si.Systemd && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeSymlink) && isUnitFile(path.Base(p)) {
			for _, d := range unitDirs {
				if path.Dir(p) == d {
					si.Units[path.Base(p)] = true
				}
			}
		}
		if h.Typeflag != tar.TypeReg || h.Size > maxConfigFileBytes || len(si.Configs) >= maxConfigFiles {
			continue
		}
		for _, d := range dirs {
			if abs := "/" + p; abs == d || strings.HasPrefix(abs, d+"/") {
				data, err := io.ReadAll(io.LimitReader(tr, maxConfigFileBytes))
				if err != nil {
					return si, err
				}
				if bytes.IndexByte(data[:min(len(data), binarySniff)], 0) < 0 {
					si.Configs = append(si.Configs, ConfigFile{Path: abs, Data: data})
				}
				break
			}
		}
	}
	return si, nil
}

// imageVersion is the version an image declares: its version label, else
// VERSION or <SERVICE>_VERSION in its environment.
func imageVersion(cf *v1.ConfigFile, service string) (string, string) {
	if v := cf.Config.Labels[VersionLabel]; v != "" {
		return v, "image label " + VersionLabel
	}
	want := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(service)) + "_VERSION"
	for _, kv := range cf.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		if (k == "VERSION" || k == want) && v != "" {
			return v, "image environment " + k
		}
	}
	return "", fmt.Sprintf("the service is not running and its image has no %s label, VERSION or %s variable", VersionLabel, want)
}
