package preflight

import "testing"

func TestExternalEndpointRule(t *testing.T) {
	env := ShellEnv{Hosts: []string{"billing", "db"}, Allow: []string{".trusted.example", "status.vendor.example"}}
	runShellCases(t, []shellCase{
		{name: "curl to a vendor", src: "curl -fsS -X POST https://reports.vendor.example/ingest --data-binary @/tmp/u.json\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "reports.vendor.example"}}},
		{name: "the environment's own hosts and loopback", src: "curl http://billing:8080/health\ncurl -s localhost:9000\nwget -qO- http://127.0.0.1/\ncurl 'http://[::1]:80/'\n", env: env},
		{name: "the allow-list", src: "curl https://api.trusted.example/x https://trusted.example/ https://status.vendor.example/\ncurl https://untrusted.example/\n", env: env,
			want: []hit{{RuleExternalEndpoint, 2, "untrusted.example"}}},
		{name: "a bare host for curl", src: "curl -H 'Host: x' api.vendor.example/v1\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "api.vendor.example"}}},
		{name: "option values are not hosts", src: "curl -o out.example.json -H 'X: a.b' http://db/\n", env: env},
		{name: "wget", src: "wget -O /tmp/x --header 'A: b' https://dl.vendor.example/pkg.tgz\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "dl.vendor.example"}}},
		{name: "nc and its listen mode", src: "nc -z -w 3 smtp.vendor.example 25\nnc -l 8080\nncat db 5432\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "smtp.vendor.example"}}},
		{name: "ssh and a jump host", src: "ssh -i key -J bastion.corp.example ops@app1.corp.example uptime\nssh db true\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "app1.corp.example"}, {RuleExternalEndpoint, 1, "bastion.corp.example"}}},
		{name: "scp and rsync to host:", src: "scp -P 2222 dump.sql backup@vault.example:/srv/\nrsync -az --exclude 'a:b' /data/ mirror.example::data/\nrsync -a /a/ /b/\nrsync -a /a/ db:/b/\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "vault.example"}, {RuleExternalEndpoint, 2, "mirror.example"}}},
		{name: "psql -h and connection strings", src: "psql -h prod-db.example -d billing\npsql --host=db -c 'select 1'\npsql 'postgresql://u@replica.example:5432/billing'\npg_dump -d 'host=old.example dbname=billing'\npsql -h /var/run/postgresql\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "prod-db.example"}, {RuleExternalEndpoint, 3, "replica.example"}, {RuleExternalEndpoint, 4, "old.example"}}},
		{name: "a URL the script set earlier is followed", src: "BASE=https://hooks.vendor.example\nURL=$BASE/v1\ncurl -fsS \"$URL/ping\"\n", env: env,
			want: []hit{{RuleExternalEndpoint, 3, "hooks.vendor.example"}}},
		{name: "a URL set twice is not followed", src: "URL=http://billing/\n[ -n \"$1\" ] && URL=https://x.example/\ncurl \"$URL\"\n", env: env,
			want: []hit{{RuleCannotTell, 3, "$URL"}}},
		{name: "a host only known at run time", src: "curl \"$ENDPOINT/ingest\"\ncurl \"https://$HOST/x\"\ncurl \"http://localhost:$PORT/x\"\n", env: env,
			want: []hit{{RuleCannotTell, 1, "$ENDPOINT/ingest"}, {RuleCannotTell, 2, "https://$HOST/x"}}},
		{name: "in a cron line's sh -c", src: "echo '0 1 * * * root sh -c \"curl https://x.example/\"' > /etc/cron.d/x\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "x.example"}, {RuleScheduledTask, 1, "/etc/cron.d/x"}, {RuleScheduledTask, 1, "0 1 * * *"}}},
		{name: "a URL argument of another program is not a call", src: "echo https://docs.vendor.example/\nbin/billing-api -register-webhook http://billing:8080/hooks\n", env: env},
	})
}

// TestExternalEndpointHidden: hosts reached without a client's URL
// argument: bash's /dev/tcp, curl's config file and --resolve, wget -i.
func TestExternalEndpointHidden(t *testing.T) {
	env := ShellEnv{Hosts: []string{"billing", "db"}}
	runShellCases(t, []shellCase{
		{name: "bash's /dev/tcp in a redirection", src: "exec 3<>/dev/tcp/prod.example.com/443\ncat < /dev/udp/10.1.2.3/514\necho ping > /dev/tcp/db/5432\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "3<>/dev/tcp/prod.example.com/443` reaches prod.example.com"}, {RuleExternalEndpoint, 2, "10.1.2.3"}}},
		{name: "/dev/tcp to a host known at run time", src: "exec 3<>\"/dev/tcp/$HOST/443\"\nexec 4<>/dev/tcp/localhost/$PORT\n", env: env,
			want: []hit{{RuleCannotTell, 1, "/dev/tcp/$HOST/443"}}},
		{name: "a heredoc is not a path", src: "cat <<EOF\n/dev/tcp/x.example/1\nEOF\n", env: env},
		{name: "curl -K and --config, wget -i", src: "curl -K urls.txt\ncurl --config /etc/hooks.conf -s\nwget -i - < list\nwget --input-file=urls -q\n", env: env,
			want: []hit{{RuleCannotTell, 1, "`urls.txt`"}, {RuleCannotTell, 2, "--config"}, {RuleCannotTell, 3, "standard input"}, {RuleCannotTell, 4, "--input-file"}}},
		{name: "curl --resolve and --connect-to name hosts", src: "curl --resolve billing:443:203.0.113.9 https://billing/\ncurl --connect-to ::prod.example:443 http://db/\ncurl --resolve 'db:80:127.0.0.1' http://db/\n", env: env,
			want: []hit{{RuleExternalEndpoint, 1, "203.0.113.9"}, {RuleExternalEndpoint, 2, "prod.example"}}},
	})
}

func TestInternalHost(t *testing.T) {
	c := newShellCheck("s.sh", ShellEnv{Hosts: []string{"Billing"}, Allow: []string{".example.com", "*.corp.example", "one.example"}}, 0)
	for host, want := range map[string]bool{"billing": true, "BILLING.": true, "localhost": true, "app.localhost": true,
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "0.0.0.0": true, "a.example.com": true,
		"example.com": true, "badexample.com": false, "x.corp.example": true, "one.example": true, "two.one.example": false,
		"10.0.0.1": false, "billing-api": false} {
		if got := c.internal(host); got != want {
			t.Errorf("internal(%q) = %v, want %v", host, got, want)
		}
	}
}
