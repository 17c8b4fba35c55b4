package sandbox

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// honoured lists, for each compose-go type, the YAML keys the harness turns
// into something (harness/env plans and starts them). Any other key with a
// value is refused with ErrNotHonoured, so a key compose-go adds in a later
// version is refused until someone decides what it means in a sandbox.
// A key listed here may still be refused for its value by the rules in
// sandbox.go (cap_add, security_opt, sysctls, network_mode, ...).
//
// Keys the sandbox replaces rather than passes on, on purpose: ports'
// published and host_ip (a run publishes on 127.0.0.1 at a port the engine
// picks), container_name (the container is named for the run; the name is
// added as a network alias instead, so other services still resolve it),
// networks' and volumes' default name (each run creates its own), and
// bind.create_host_path (a missing bind source is an error: the run would
// not remove a directory it created on the host).
var honoured = map[reflect.Type][]string{
	reflect.TypeFor[types.Project](): {"name", "services", "networks", "volumes", "secrets", "configs"},
	reflect.TypeFor[types.ServiceConfig](): {
		"name", "profiles", "restart", "container_name",
		"build", "cap_add", "cap_drop", "command", "configs", "depends_on", "entrypoint",
		"environment", "env_file", "expose", "healthcheck", "hostname", "image", "init",
		"labels", "label_file", "network_mode", "networks", "platform", "ports", "pull_policy",
		"read_only", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
		"stop_signal", "sysctls", "tmpfs", "tty", "user", "volumes", "working_dir",
	},
	reflect.TypeFor[types.BuildConfig]():            {"context", "dockerfile", "dockerfile_inline", "args", "target"},
	reflect.TypeFor[types.HealthCheckConfig]():      {"test", "timeout", "interval", "retries", "start_period", "start_interval", "disable"},
	reflect.TypeFor[types.ServicePortConfig]():      {"target", "protocol", "published", "host_ip", "mode", "name", "app_protocol"},
	reflect.TypeFor[types.ServiceNetworkConfig]():   {"aliases", "priority"},
	reflect.TypeFor[types.ServiceVolumeConfig]():    {"type", "source", "target", "read_only", "bind", "volume", "tmpfs"},
	reflect.TypeFor[types.ServiceVolumeBind]():      {"propagation", "create_host_path"},
	reflect.TypeFor[types.ServiceVolumeVolume]():    {"nocopy"},
	reflect.TypeFor[types.ServiceVolumeTmpfs]():     {"size", "mode"},
	reflect.TypeFor[types.ServiceDependency]():      {"condition", "required"},
	reflect.TypeFor[types.ServiceSecretConfig]():    {"source", "target"},
	reflect.TypeFor[types.ServiceConfigObjConfig](): {"source", "target"},
	reflect.TypeFor[types.EnvFile]():                {"path", "required", "format"},
	reflect.TypeFor[types.NetworkConfig]():          {"name", "driver", "internal", "external"},
	reflect.TypeFor[types.VolumeConfig]():           {"name", "driver", "external"},
	reflect.TypeFor[types.SecretConfig]():           {"name", "file", "external"},
	reflect.TypeFor[types.ConfigObjConfig]():        {"name", "file", "external"},
}

// hints says what to do instead of a key that is not honoured, where there
// is something useful to say.
var hints = map[string]string{
	"deploy":         "resource limits and replicas are not applied in a rehearsal; remove it",
	"jobs":           "run one-shot work as a service that exits, with depends_on: condition: service_completed_successfully",
	"labels":         "only service labels are applied",
	"ipam":           "a run's networks take addresses the engine picks",
	"ipv4_address":   "a run's networks take addresses the engine picks; use the service name or an alias",
	"ipv6_address":   "a run's networks take addresses the engine picks; use the service name or an alias",
	"environment":    "only file: secrets and configs are honoured",
	"content":        "only file: secrets and configs are honoured",
	"subpath":        "the engine's API (1.41) has no volume subpath",
	"devices":        "host devices are not available in a rehearsal",
	"extra_hosts":    "use network aliases between services",
	"driver_opts":    "driver options may point a volume or network at the host",
	"uid":            "secrets and configs are bind-mounted read-only as they are on disk",
	"gid":            "secrets and configs are bind-mounted read-only as they are on disk",
	"mode":           "secrets and configs are bind-mounted read-only as they are on disk",
	"restart":        "a dependent is not restarted with its dependency",
	"use_api_socket": "the Docker socket is never available in a rehearsal",
}

// checkKeys refuses every non-zero field of v whose key is not honoured,
// walking into honoured structs, slices and maps; path is v's key path.
func checkKeys(file string, path []string, v reflect.Value) error {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		keys, ok := honoured[v.Type()]
		if !ok {
			return nil // a value, such as a duration: its key was honoured
		}
		return checkFields(file, path, v, keys)
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := checkKeys(file, append(slices.Clip(path), fmt.Sprintf("[%d]", i)), v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil
		}
		ks := v.MapKeys()
		slices.SortFunc(ks, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range ks {
			if err := checkKeys(file, append(slices.Clip(path), k.String()), v.MapIndex(k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkFields(file string, path []string, v reflect.Value, keys []string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && strings.Contains(","+opts, ",inline") && fv.Kind() == reflect.Struct {
			if err := checkFields(file, path, fv, keys); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() || name == "-" || strings.HasPrefix(name, "#") || strings.Contains(","+opts, ",inline") {
			continue // not from YAML, or the x-* extensions, which belong to other tools
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if fv.IsZero() {
			continue
		}
		p := append(slices.Clip(path), name)
		if !slices.Contains(keys, name) {
			return unhonoured(file, p, hints[name])
		}
		if err := checkKeys(file, p, fv); err != nil {
			return err
		}
	}
	return nil
}
