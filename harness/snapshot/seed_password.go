package snapshot

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/rehearse/rehearse/harness/env"
)

// Bounds of the password check: the plaintexts tried, and the SCRAM
// iterations computed for one.
const (
	seedMaxSecrets        = 64
	seedMaxScramIteration = 100_000
)

// seedSecrets are the plaintexts a role's password may have been set
// from by the compose file: every service's environment values, the
// passwords in the URLs and key=value connection strings among them
// (DATABASE_URL=postgres://user:PASSWORD@db/...), and the contents of the
// small files a service reads its secrets from (seedSecretFiles:
// POSTGRES_PASSWORD_FILE=/run/secrets/db_password).
func seedSecrets(p *env.Plan) []string {
	var out []string
	add := func(s string) {
		if s != "" && len(s) <= seedMaxSecretBytes && !slices.Contains(out, s) && len(out) < seedMaxSecrets {
			out = append(out, s)
		}
	}
	for _, sp := range p.Services {
		for _, k := range slices.Sorted(maps.Keys(sp.Env)) {
			v := sp.Env[k]
			add(v)
			if u, err := url.Parse(v); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok {
					add(pw)
				}
			}
			for _, f := range strings.Fields(v) {
				if pw, ok := strings.CutPrefix(f, "password="); ok {
					add(strings.Trim(pw, "'"))
				}
			}
		}
	}
	for _, sp := range p.Services {
		for _, v := range seedSecretFiles(sp) {
			add(v)
		}
	}
	return out
}

// seedMaxSecretBytes bounds a plaintext tried, and a secret file read.
const seedMaxSecretBytes = 1024

// seedSecretFiles reads, on the host, the files a service may take a
// password from: the paths of its *_FILE environment values, and the
// files bound under /run/secrets (compose secrets), each through the
// bind mount that holds it. Only small regular files count; trailing
// newlines are trimmed, as the images' entrypoints do ("$(< file)").
// Files that cannot be read are left out: a secret not tried is a miss,
// never a wrong hit.
func seedSecretFiles(sp *env.ServicePlan) []string {
	var targets []string
	for _, k := range slices.Sorted(maps.Keys(sp.Env)) {
		if v := sp.Env[k]; strings.HasSuffix(k, "_FILE") && path.IsAbs(v) {
			targets = append(targets, path.Clean(v))
		}
	}
	for _, m := range sp.Mounts {
		if m.Type == "bind" && (m.Target == "/run/secrets" || strings.HasPrefix(m.Target, "/run/secrets/")) {
			if st, err := os.Stat(m.Source); err == nil && st.Mode().IsRegular() {
				targets = append(targets, path.Clean(m.Target))
			}
		}
	}
	var out []string
	for _, t := range targets {
		host, ok := seedBindHostPath(sp, t)
		if !ok {
			continue
		}
		// The compose file names the path: never follow a link out of
		// the bind, never block on a fifo.
		f, err := os.OpenFile(host, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		var b []byte
		if err == nil && st.Mode().IsRegular() && st.Size() <= seedMaxSecretBytes {
			b, err = io.ReadAll(io.LimitReader(f, seedMaxSecretBytes+1))
		}
		f.Close()
		if err == nil && len(b) > 0 && len(b) <= seedMaxSecretBytes {
			out = append(out, strings.TrimRight(string(b), "\n"))
		}
	}
	return out
}

// seedBindHostPath maps a path in a service's container to the host path
// of the bind mount that holds it (the deepest one).
func seedBindHostPath(sp *env.ServicePlan, target string) (string, bool) {
	best, host := -1, ""
	for _, m := range sp.Mounts {
		if m.Type != "bind" {
			continue
		}
		mt := path.Clean(m.Target)
		rel, ok := strings.CutPrefix(target, mt)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && mt != "/") || len(mt) <= best {
			continue
		}
		best, host = len(mt), filepath.Join(m.Source, filepath.FromSlash(rel))
	}
	return host, best >= 0
}

// seedHashPasswords hashes each role's password as a key compares it. A
// SCRAM verifier carries a random salt, so two clusters made alike hold
// different verifiers of one password: a verifier of one of the compose
// file's secrets (seedSecrets, which the key covers through the plan)
// counts as that secret; any other counts by its own bytes (equal only
// in the cluster that made it: a miss, never a wrong hit). An md5 or
// plain password counts by its bytes.
func seedHashPasswords(ctx context.Context, h hash.Hash, conn *pgx.Conn, secrets []string) error {
	rows, err := conn.Query(ctx, `SELECT rolname::text, rolpassword FROM pg_authid ORDER BY 1`)
	if err != nil {
		return err
	}
	type role struct {
		name string
		pw   *string
	}
	roles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (role, error) {
		var x role
		return x, r.Scan(&x.name, &x.pw)
	})
	if err != nil {
		return err
	}
	for _, r := range roles {
		fmt.Fprintf(h, "password %q %s\n", r.name, seedPasswordClass(r.pw, secrets))
	}
	fmt.Fprintln(h, "--")
	return nil
}

// seedPasswordClass is what a key takes of one stored password.
func seedPasswordClass(pw *string, secrets []string) string {
	if pw == nil {
		return "none"
	}
	if v, ok := parseScram(*pw); ok {
		for i, s := range secrets {
			if v.verifies(s) {
				return "scram secret " + strconv.Itoa(i)
			}
		}
	}
	sum := sha256.Sum256([]byte(*pw))
	return fmt.Sprintf("stored %x", sum)
}

// scramVerifier is a SCRAM-SHA-256 verifier as pg_authid stores it:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
type scramVerifier struct {
	iter                       int
	salt, storedKey, serverKey []byte
}

func parseScram(s string) (scramVerifier, bool) {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return scramVerifier{}, false
	}
	params, keys, ok := strings.Cut(rest, "$")
	it, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok || !ok1 || !ok2 {
		return scramVerifier{}, false
	}
	var v scramVerifier
	var err error
	if v.iter, err = strconv.Atoi(it); err != nil || v.iter < 1 || v.iter > seedMaxScramIteration {
		return scramVerifier{}, false
	}
	dec := base64.StdEncoding.DecodeString
	if v.salt, err = dec(salt); err != nil {
		return scramVerifier{}, false
	}
	if v.storedKey, err = dec(stored); err != nil || len(v.storedKey) != sha256.Size {
		return scramVerifier{}, false
	}
	if v.serverKey, err = dec(server); err != nil || len(v.serverKey) != sha256.Size {
		return scramVerifier{}, false
	}
	return v, true
}

// verifies reports whether the verifier is one of password (RFC 5802,
// as PostgreSQL computes it; the password taken as given, without
// SASLprep, which leaves ASCII as it is).
func (v scramVerifier) verifies(password string) bool {
	salted, err := pbkdf2.Key(sha256.New, password, v.salt, v.iter, sha256.Size)
	if err != nil {
		return false
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return hmac.Equal(stored[:], v.storedKey) && hmac.Equal(mac(salted, "Server Key"), v.serverKey)
}
