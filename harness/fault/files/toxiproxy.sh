#!/bin/bash
# rehearse-toxiproxy: the entry of a rehearse run's toxiproxy container
# (toxic network faults). Arguments go to toxiproxy-server.
#
# The container joins a bridge of its own, where the engine publishes the
# API port on 127.0.0.1, and the run's internal networks, where its proxies
# listen. Before the server starts, its traffic is confined:
#   - on the bridge (the interface of the default route: internal networks
#     have none) only the API comes in and only its answers go out; the API
#     is refused on every other interface, so that no service, even one
#     with NET_ADMIN that routes to the bridge address, can create a proxy;
#   - on the run's networks nothing comes in and nothing goes out but the
#     answers of connections already let through. Each toxic adds, through
#     the netfilter helper run in this namespace (rehearse-netfilter allow,
#     rules tagged with the toxic, removed by its heal), what its proxies
#     need: its client A may connect to the proxy's listen address and
#     port, and the server may connect to the proxy's upstream, B's port.
#     A proxy someone else makes through the API reaches nothing and is
#     reached by no one;
#   - IPv6: nothing but loopback (toxics redirect IPv4 only). A kernel
#     without IPv6 has no ip6tables to set: it is skipped.
# It routes nothing: forwarding is off (the container's sysctls) and the
# FORWARD policies drop. The server then runs without NET_ADMIN.
set -euo pipefail
fail() {
	echo "rehearse-toxiproxy: $*" >&2
	exit 1
}
api=${REHEARSE_TOXIPROXY_API_PORT:?the API port}
[[ $api =~ ^[0-9]+$ ]] || fail "API port $api: not a number"
bridge=$(awk 'NR > 1 && $2 == "00000000" { print $1; exit }' /proc/net/route)
[ -n "$bridge" ] || fail "no default route: the container is not on its own bridge"
families=iptables
if ip6tables -w -S >/dev/null 2>&1; then
	families="iptables ip6tables"
elif [ ! -s /proc/net/if_inet6 ]; then
	echo "rehearse-toxiproxy: no IPv6 in this kernel (ip6tables cannot list): IPv6 left unconfined, there is none"
else
	fail "ip6tables cannot list, but the container has IPv6 addresses: cannot confine it"
fi
for t in $families; do
	"$t" -w -P FORWARD DROP && "$t" -w -F FORWARD && "$t" -w -F INPUT && "$t" -w -F OUTPUT ||
		fail "$t: cannot confine the container (it needs NET_ADMIN)"
done
iptables -w -A INPUT -i "$bridge" -p tcp --dport "$api" -j ACCEPT
iptables -w -A INPUT -i "$bridge" -j DROP
iptables -w -A INPUT -p tcp --dport "$api" -j DROP
iptables -w -A INPUT -i lo -j ACCEPT
iptables -w -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -w -A INPUT -j DROP
iptables -w -A OUTPUT -o "$bridge" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -w -A OUTPUT -o "$bridge" -j REJECT
iptables -w -A OUTPUT -o lo -j ACCEPT
iptables -w -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -w -A OUTPUT -j REJECT
if [ "$families" != iptables ]; then
	ip6tables -w -A INPUT -i lo -j ACCEPT
	ip6tables -w -A INPUT -j DROP
	ip6tables -w -A OUTPUT -o lo -j ACCEPT
	ip6tables -w -A OUTPUT -j REJECT
fi
echo "rehearse-toxiproxy: API on port $api of $bridge only; proxies confined to their toxics"
exec setpriv --bounding-set=-net_admin,-setpcap --inh-caps=-net_admin,-setpcap \
	/usr/local/bin/toxiproxy-server -host 0.0.0.0 -port "$api" "$@"
