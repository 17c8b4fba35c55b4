package preflight

import (
	"fmt"
	"net"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// endpointRule finds network clients (curl, wget, nc, ssh, scp, rsync,
// psql -h, ...) aimed at a host outside the environment. A rehearsal runs
// on a copy of production: a script or cron job that calls a real
// endpoint from there sends real requests (duplicate reports, webhooks,
// payments) or fails only because the rehearsal is firewalled.
type endpointRule struct{}

// netTarget is a host a command reaches.
type netTarget struct {
	word   *syntax.Word
	host   string
	ok     bool   // host is known (not built at run time)
	unseen string // why the hosts are not seen (curl -K FILE), for a cannot-tell
	what   string // what reaches it, when not the command (a redirection)
}

func (endpointRule) check(c *command) {
	for _, t := range append(c.devNet(), c.targets(c.name())...) {
		name := c.name()
		if t.what != "" {
			name = t.what
		}
		switch {
		case t.unseen != "":
			c.sc.report(RuleCannotTell, Info, t.word, t.unseen,
				"name the hosts on the command line, or check by hand that every host the file names is in the environment")
		case !t.ok:
			c.sc.report(RuleCannotTell, Info, t.word,
				fmt.Sprintf("`%s` reaches a host only known at run time (`%s`): whether it is outside the environment is not judged", name, oneLine(c.sc.wordSource(t.word))),
				"name the host literally, or check by hand that every value it can take is in the environment")
		case !c.sc.check.internal(t.host):
			c.sc.report(RuleExternalEndpoint, Warning, t.word,
				fmt.Sprintf("`%s` reaches %s, which is outside the environment", name, t.host),
				fmt.Sprintf("point it at a service of the environment or a stub (a rehearsal must not call production), or allow %s if the rehearsal may reach it", t.host))
		}
	}
}

// internal says whether a host is the environment's own, loopback, or on
// the allow-list (".example.com" allows example.com and its subdomains).
func (c *shellCheck) internal(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return true
	}
	for _, e := range c.env.Hosts {
		if strings.EqualFold(e, h) {
			return true
		}
	}
	for _, a := range c.env.Allow {
		a = strings.ToLower(strings.TrimPrefix(a, "*"))
		if a == h || strings.HasPrefix(a, ".") && (strings.HasSuffix(h, a) || h == a[1:]) {
			return true
		}
	}
	return false
}

// clientOpts are the options that take a value, per network client.
var clientOpts = map[string]optSpec{
	"curl": {short: "AbcdDeEFHKmoQrTuUwxXyYzCP", long: []string{"data", "data-binary", "data-raw", "data-urlencode",
		"data-ascii", "header", "output", "user", "user-agent", "referer", "form", "form-string", "upload-file",
		"write-out", "max-time", "connect-timeout", "retry", "retry-delay", "retry-max-time", "proxy", "request",
		"cookie", "cookie-jar", "cacert", "capath", "cert", "key", "config", "resolve", "connect-to", "json",
		"output-dir", "range", "continue-at", "interface", "limit-rate", "max-filesize", "noproxy", "oauth2-bearer",
		"pass", "proxy-user", "quote", "time-cond", "unix-socket", "variable", "expand-url", "url-query", "trace",
		"trace-ascii", "dump-header", "stderr", "aws-sigv4", "max-redirs", "keepalive-time", "speed-limit", "speed-time"}},
	"wget": {short: "aABeiIlOoPQRtTUwXDY", long: []string{"output-document", "output-file", "append-output",
		"header", "post-data", "post-file", "body-data", "body-file", "method", "user", "password", "http-user",
		"http-password", "user-agent", "timeout", "tries", "wait", "directory-prefix", "input-file", "execute",
		"load-cookies", "save-cookies", "ca-certificate", "certificate", "private-key", "referer", "base", "quota", "level"}},
	"nc":     {short: "IiOpqsTwxXeccCmV"},
	"ssh":    sshOpts,
	"scp":    {short: "cFiJloPSX"},
	"sftp":   {short: "BbcDFiJloPRSsX"},
	"rsync":  {short: "eBfTM", long: []string{"exclude", "include", "filter", "files-from", "exclude-from", "include-from", "rsh", "rsync-path", "log-file", "partial-dir", "temp-dir", "compare-dest", "copy-dest", "link-dest", "backup-dir", "suffix", "chmod", "chown", "timeout", "contimeout", "bwlimit", "port", "password-file", "out-format", "usermap", "groupmap"}},
	"psql":   {short: "cdfFhLopRUvPT", long: []string{"command", "dbname", "file", "field-separator", "host", "log-file", "output", "port", "record-separator", "username", "variable", "set", "pset", "table-attr"}},
	"mysql":  {short: "hPuDeSp", long: []string{"host", "port", "user", "database", "execute", "socket"}},
	"telnet": {short: "blnekX"},
}

func init() {
	clientOpts["ncat"], clientOpts["netcat"] = clientOpts["nc"], clientOpts["nc"]
	for _, pg := range []string{"pg_dump", "pg_dumpall", "pg_restore", "pg_isready", "pg_basebackup", "createdb", "dropdb",
		"createuser", "dropuser", "vacuumdb", "reindexdb", "clusterdb", "pgbench"} {
		clientOpts[pg] = optSpec{short: "hpUdfFjnNtTSZcEIgL", long: []string{"host", "port", "username", "dbname", "file", "format", "jobs", "schema", "table", "exclude-schema", "exclude-table", "compress", "encoding", "superuser", "role", "lock-wait-timeout", "section", "timeout"}}
	}
	for _, my := range []string{"mysqldump", "mysqladmin", "mariadb", "redis-cli"} {
		clientOpts[my] = clientOpts["mysql"]
	}
}

// targets are the hosts a network client reaches, by its arguments.
func (c *command) targets(name string) []netTarget {
	spec, ok := clientOpts[name]
	if !ok {
		return nil
	}
	args := c.sc.args(c.words[1:], spec, false)
	pos := positionals(args)
	var out []netTarget
	add := func(a shellArg, host string, known bool) {
		if a.word != nil && (!known || host != "") {
			out = append(out, netTarget{word: a.word, host: host, ok: known})
		}
	}
	switch name {
	case "curl", "wget":
		for _, a := range args {
			if a.opt == "--url" || a.opt == "" {
				if h, known, isURL := urlish(a, a.opt == "--url"); isURL {
					add(a, h, known)
				}
			} else if a.word != nil && a.ok && strings.Contains(a.val, "://") && (a.opt == "-x" || a.opt == "--proxy") {
				h, known := urlHost(a.val)
				add(a, h, known)
			} else if a.word != nil && (a.opt == "--resolve" || a.opt == "--connect-to") && name == "curl" {
				if !a.ok {
					add(a, "", false)
					continue
				}
				for _, h := range resolveHosts(a.val, a.opt == "--connect-to") {
					add(a, h, true)
				}
			}
			if a.word != nil && (name == "curl" && (a.opt == "-K" || a.opt == "--config") ||
				name == "wget" && (a.opt == "-i" || a.opt == "--input-file")) {
				from := "standard input"
				if a.val != "-" {
					from = "`" + oneLine(c.sc.wordSource(a.word)) + "`"
				}
				out = append(out, netTarget{word: a.word, unseen: fmt.Sprintf("`%s %s` reads its URLs from %s: the hosts it reaches are not seen", name, a.opt, from)})
			}
		}
	case "nc", "ncat", "netcat", "telnet":
		if _, listen := lastOpt(args, "-l", "--listen"); listen || len(pos) == 0 {
			return nil
		}
		add(pos[0], pos[0].val, pos[0].ok)
	case "ssh":
		if len(pos) > 0 {
			h, known := sshHost(pos[0].val)
			add(pos[0], h, known && pos[0].ok)
		}
		if j, ok := lastOpt(args, "-J"); ok && j.ok {
			for _, hop := range strings.Split(j.val, ",") {
				h, _ := sshHost(hop)
				add(j, h, true)
			}
		}
	case "scp", "sftp", "rsync":
		for _, a := range pos {
			if !a.ok {
				continue // a local path or a remote one, only known at run time
			}
			if strings.Contains(a.val, "://") {
				h, known := urlHost(a.val)
				add(a, h, known)
			} else if h, ok := colonHost(a.val); ok {
				add(a, h, true)
			} else if name == "sftp" {
				h, _ := sshHost(a.val)
				add(a, h, true)
			}
		}
	default: // database clients: -h/--host, a URI or a conninfo's host=
		if h, ok := lastOpt(args, "-h", "--host"); ok {
			if h.ok && !strings.HasPrefix(h.val, "/") {
				for _, one := range strings.Split(h.val, ",") {
					add(h, one, true)
				}
			} else if !h.ok {
				add(h, "", false)
			}
		}
		for _, a := range args {
			if a.word == nil || !a.ok || !(a.opt == "" || a.opt == "-d" || a.opt == "--dbname") {
				continue
			}
			for _, h := range connHosts(a.val) {
				add(a, h, true)
			}
		}
	}
	return out
}

// urlish reads an argument of curl or wget: a URL, or a bare host[:port]
// (curl accepts example.com/path). isURL is false for anything else.
func urlish(a shellArg, forced bool) (host string, known, isURL bool) {
	if a.word == nil {
		return "", false, false
	}
	if strings.Contains(a.val, "://") {
		h, known := urlHost(a.val)
		return h, known && (a.ok || hostEnds(a.val)), true
	}
	if !a.ok {
		if a.val == "" || forced {
			return "", false, true // "$URL": the whole destination is run-time
		}
		return "", false, false
	}
	if strings.HasPrefix(a.val, "-") || strings.HasPrefix(a.val, "@") || strings.HasPrefix(a.val, "/") || strings.HasPrefix(a.val, ".") || strings.HasPrefix(a.val, "~") {
		return "", false, false
	}
	h := a.val
	if i := strings.IndexAny(h, "/?#"); i >= 0 {
		h = h[:i]
	}
	h = stripPort(h)
	if h == "" || !(strings.Contains(h, ".") || h == "localhost" || forced) {
		return "", false, false
	}
	return h, true, true
}

// urlHost is the host of scheme://[user@]host[:port]/...; ok is false
// when the text stops (at a run-time expansion) before the host ends.
func urlHost(u string) (string, bool) {
	_, rest, _ := strings.Cut(u, "://")
	end := strings.IndexAny(rest, "/?#")
	hostPort := rest
	if end >= 0 {
		hostPort = rest[:end]
	}
	if i := strings.LastIndexByte(hostPort, '@'); i >= 0 {
		hostPort = hostPort[i+1:]
	}
	return stripPort(hostPort), hostPort != ""
}

// hostEnds says whether a partly known URL's text reaches past its host
// ("http://localhost:$PORT/" does; "https://$HOST/" and "https://api." do
// not).
func hostEnds(u string) bool {
	_, rest, _ := strings.Cut(u, "://")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return strings.ContainsAny(rest, ":/?#") && !strings.HasPrefix(rest, ":")
}

func stripPort(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return h[1:i]
		}
		return h
	}
	if strings.Count(h, ":") == 1 {
		h, _, _ = strings.Cut(h, ":")
	}
	return h
}

// colonHost is the host of scp's and rsync's [user@]host:path and
// host::module.
func colonHost(s string) (string, bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.ContainsAny(s[:i], "/") || strings.HasPrefix(s, "[") {
		return "", false
	}
	h := s[:i]
	if j := strings.LastIndexByte(h, '@'); j >= 0 {
		h = h[j+1:]
	}
	return h, h != ""
}

// connHosts are the hosts of a PostgreSQL URI (postgres://h1,h2/db) or a
// conninfo string (host=h dbname=d); a socket directory is local.
func connHosts(s string) []string {
	var hosts string
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"), strings.HasPrefix(s, "mysql://"),
		strings.HasPrefix(s, "redis://"), strings.HasPrefix(s, "mongodb://"):
		_, rest, _ := strings.Cut(s, "://")
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			rest = rest[:i]
		}
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			rest = rest[i+1:]
		}
		hosts = rest
	case strings.Contains(s, "="):
		for _, kv := range strings.Fields(s) {
			if k, v, ok := strings.Cut(kv, "="); ok && (k == "host" || k == "hostaddr") {
				hosts = strings.Trim(v, "'")
			}
		}
	}
	var out []string
	for _, h := range strings.Split(hosts, ",") {
		if h = stripPort(h); h != "" && !strings.HasPrefix(h, "/") && !strings.HasPrefix(h, "%2F") {
			out = append(out, h)
		}
	}
	return out
}

// resolveHosts are the hosts curl's --resolve [+]HOST:PORT:ADDR[,ADDR...]
// (the name and the addresses it then connects to; -HOST:PORT only drops
// an entry) or --connect-to HOST1:PORT1:HOST2:PORT2 names. An empty or *
// host is any host, named elsewhere.
func resolveHosts(v string, connectTo bool) []string {
	if strings.HasPrefix(v, "-") {
		return nil
	}
	v = strings.TrimPrefix(v, "+")
	host, rest, _ := strings.Cut(v, ":")
	_, rest, _ = strings.Cut(rest, ":") // the port
	var out []string
	if host != "" && host != "*" {
		out = append(out, strings.Trim(host, "[]"))
	}
	if connectTo {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			rest = rest[:i] // HOST2's port
		}
		if rest = strings.Trim(rest, "[]"); rest != "" {
			out = append(out, rest)
		}
		return out
	}
	for _, a := range strings.Split(rest, ",") {
		if a = strings.Trim(a, "[]"); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// devNet are the hosts a statement's redirections reach through bash's
// /dev/tcp/HOST/PORT and /dev/udp/HOST/PORT (exec 3<>/dev/tcp/h/443,
// cat < /dev/tcp/h/80): bash networking without a client.
func (c *command) devNet() []netTarget {
	if c.wrapped {
		return nil // the statement's redirections are its first command's
	}
	var out []netTarget
	for _, r := range c.redirs {
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc:
			continue
		}
		if r.Word == nil {
			continue
		}
		p, known := c.sc.text(r.Word)
		rest, ok := strings.CutPrefix(p, "/dev/tcp/")
		if !ok {
			rest, ok = strings.CutPrefix(p, "/dev/udp/")
		}
		if !ok {
			continue
		}
		host, _, ends := strings.Cut(rest, "/")
		out = append(out, netTarget{word: r.Word, host: host, ok: host != "" && (known || ends),
			what: oneLine(c.sc.raw(r.Pos(), r.End()))})
	}
	return out
}
