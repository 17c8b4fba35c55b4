#!/bin/bash
# rehearse-toxiproxy: the entry of a rehearse run's toxiproxy container
# (toxic network faults). Arguments go to toxiproxy-server.
#
# The container joins a bridge of its own, where the engine publishes the
# API port on 127.0.0.1, and the run's internal networks, where its proxies
# listen. Before the server starts, its traffic is confined: on the bridge
# (the interface of the default route: internal networks have none) only
# the API comes in and only its answers go out; the API is refused on
# every other interface, so that no service, even one with NET_ADMIN that
# routes to the bridge address, can create a proxy to anywhere. It routes
# nothing: forwarding is off (the container's sysctls) and the FORWARD
# policies drop. The server then runs without NET_ADMIN.
set -euo pipefail
fail() {
	echo "rehearse-toxiproxy: $*" >&2
	exit 1
}
api=${REHEARSE_TOXIPROXY_API_PORT:?the API port}
[[ $api =~ ^[0-9]+$ ]] || fail "API port $api: not a number"
bridge=$(awk 'NR > 1 && $2 == "00000000" { print $1; exit }' /proc/net/route)
[ -n "$bridge" ] || fail "no default route: the container is not on its own bridge"
for t in iptables ip6tables; do
	"$t" -w -P FORWARD DROP && "$t" -w -F FORWARD && "$t" -w -F INPUT && "$t" -w -F OUTPUT ||
		fail "$t: cannot confine the container (it needs NET_ADMIN)"
done
iptables -w -A INPUT -i "$bridge" -p tcp --dport "$api" -j ACCEPT
iptables -w -A INPUT -i "$bridge" -j DROP
iptables -w -A INPUT -p tcp --dport "$api" -j DROP
iptables -w -A OUTPUT -o "$bridge" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -w -A OUTPUT -o "$bridge" -j REJECT
ip6tables -w -A INPUT -i "$bridge" -j DROP
ip6tables -w -A INPUT -p tcp --dport "$api" -j DROP
ip6tables -w -A OUTPUT -o "$bridge" -j REJECT
echo "rehearse-toxiproxy: API on port $api of $bridge only"
exec setpriv --bounding-set=-net_admin,-setpcap --inh-caps=-net_admin,-setpcap \
	/usr/local/bin/toxiproxy-server -host 0.0.0.0 -port "$api" "$@"
