#!/bin/bash
# Each argument is LISTEN:PROTO:HOST:PORT. One socat per port; the gateway
# exits when any of them dies, so a broken forward is visible.
#
# Before any forward starts, the container's own traffic is confined:
# loopback (Docker's embedded DNS), replies, and the subnets in
# REHEARSE_GATEWAY_ALLOW (the run's internal networks, comma-separated) are
# let out; the addresses in REHEARSE_GATEWAY_DENY (those networks' bridge
# gateways: the host) and everything else are refused. A name that does not
# resolve on the run's networks cannot reach anything: not the host, not
# production. It routes nothing: forwarding is off (the container's sysctls)
# and the FORWARD policies drop, so a service with NET_ADMIN cannot use it as
# a router to the ports bridge. The forwards then run without NET_ADMIN.
set -u
# bash as PID 1 ignores SIGTERM unless it traps it: stop the forwards and
# exit 0 at once, instead of waiting for Docker's kill after its timeout.
trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
fail() {
	echo "rehearse-gateway: $*" >&2
	exit 1
}
[ -n "${REHEARSE_GATEWAY_ALLOW:-}" ] || fail "REHEARSE_GATEWAY_ALLOW names no network to forward to"
for t in iptables ip6tables; do
	"$t" -w -P FORWARD DROP && "$t" -w -F FORWARD ||
		fail "$t: cannot stop the gateway from routing (it needs NET_ADMIN)"
	"$t" -w -F OUTPUT &&
		"$t" -w -A OUTPUT -o lo -j ACCEPT &&
		"$t" -w -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT ||
		fail "$t: cannot confine the gateway's traffic (it needs NET_ADMIN)"
done
family() { case $1 in *:*) echo ip6tables ;; *) echo iptables ;; esac; }
IFS=, read -ra deny <<<"${REHEARSE_GATEWAY_DENY:-}"
for a in "${deny[@]}"; do
	"$(family "$a")" -w -A OUTPUT -d "$a" -j REJECT || fail "deny $a"
done
IFS=, read -ra allow <<<"$REHEARSE_GATEWAY_ALLOW"
for c in "${allow[@]}"; do
	"$(family "$c")" -w -A OUTPUT -d "$c" -j ACCEPT || fail "allow $c"
done
# Refused at once rather than dropped, so that a connect fails fast; the
# policy drops whatever the last rule would not catch.
for t in iptables ip6tables; do
	"$t" -w -A OUTPUT -j REJECT && "$t" -w -P OUTPUT DROP || fail "$t: cannot set the OUTPUT policy"
done
for spec in "$@"; do
	IFS=: read -r listen proto host port <<<"$spec"
	if [ "$proto" = udp ]; then
		setpriv --bounding-set=-net_admin socat "UDP-LISTEN:$listen,fork,reuseaddr" "UDP:$host:$port" &
	else
		setpriv --bounding-set=-net_admin socat "TCP-LISTEN:$listen,fork,reuseaddr" "TCP:$host:$port" &
	fi
done
echo "rehearse-gateway: confined to $REHEARSE_GATEWAY_ALLOW; forwarding $*"
wait -n
exit 1
