#!/bin/bash
# rehearse-netfilter: the packet filter changes of rehearse's network
# faults, run in a service's network namespace.
#
#   cut TAG ADDR...   drop every packet to and from each ADDR, in rules
#                     whose comment is TAG
#   redirect TAG ADDR,PORT,TO,TOPORT...
#                     send the namespace's TCP connections to ADDR:PORT to
#                     TO:TOPORT instead (nat OUTPUT DNAT, comment TAG), then
#                     forget those already open (see forget)
#   forget ADDR,PORT...
#                     delete the connection tracking entries of the
#                     namespace's TCP connections to ADDR:PORT, so that
#                     their next packet meets the nat rules as they are now
#   heal TAG          delete the rules whose comment is exactly TAG
#   sweep PREFIX      delete the rules whose comment starts with PREFIX
#   list PREFIX       print the rules whose comment starts with PREFIX
#
# Rules go first in OUTPUT and INPUT, so that no rule of the service's own
# lets the packets through. Only rules with rehearse's comment are ever
# deleted; every other rule of the namespace stays as it was. heal, sweep
# and list cover the filter and the nat table (nat rules print as
# "-t nat -A ...").
#
# A connection that is forgotten while a redirect holds continues, from
# its next packet on, to the redirect's target, which knows nothing of it
# and resets it: the client sees "connection reset by peer" once and
# connects again, through the redirect. Forgotten after the redirect is
# gone, it reaches the original peer again, which resets it the same way.
set -euo pipefail
set -f # rules are split into words below; no word is a pattern
fail() {
	echo "rehearse-netfilter: $*" >&2
	exit 1
}
family() { case $1 in *:*) echo ip6tables ;; *) echo iptables ;; esac; }

# tagged T MODE TAG prints the rules of T (iptables or ip6tables), as
# T -S prints them (with -t nat first for the nat table), whose comment is TAG (MODE exact) or starts with it
# (MODE prefix). A T that cannot list (no IPv6 in the namespace) has none.
tagged() {
	local t=$1 mode=$2 tag=$3 table pre rules r
	for table in filter nat; do
		rules=$("$t" -w -t "$table" -S 2>/dev/null) || continue
		pre=""
		[ "$table" = filter ] || pre="-t $table "
		while IFS= read -r r; do
			case $mode in
			exact) [[ " $r " == *" --comment $tag "* ]] && echo "$pre$r" ;;
			prefix) [[ " $r " == *" --comment $tag"* ]] && echo "$pre$r" ;;
			esac
		done <<<"$rules"
	done
	return 0
}

# remove MODE TAG deletes the tagged rules of both families.
remove() {
	local t r
	for t in iptables ip6tables; do
		while IFS= read -r r; do
			[ -n "$r" ] || continue
			# shellcheck disable=SC2086 # a rule is words, none quoted
			"$t" -w ${r/-A /-D } || fail "$t: cannot delete rule: $r"
		done < <(tagged "$t" "$1" "$2")
	done
}

# forget ADDR PORT deletes the tracked TCP connections to ADDR:PORT.
# conntrack fails when there is none: that is not an error here.
forget() {
	local out f=ipv4
	[[ $1 == *:* ]] && f=ipv6
	out=$(conntrack -D -f "$f" -p tcp --orig-dst "$1" --orig-port-dst "$2" 2>&1) ||
		[[ $out == *" 0 flow entries"* ]] ||
		fail "conntrack: cannot forget the connections to $1 port $2: $out"
}

# mapping M splits ADDR,PORT,TO,TOPORT (TO and TOPORT optional) into
# m_addr, m_port, m_to and m_toport, and checks it.
mapping() {
	IFS=, read -r m_addr m_port m_to m_toport <<<"$1"
	[[ $m_addr =~ ^[0-9a-fA-F.:]+$ && $m_port =~ ^[0-9]+$ ]] || fail "$1: want ADDR,PORT"
	[ -z "$m_to" ] || [[ $m_to =~ ^[0-9a-fA-F.:]+$ && $m_toport =~ ^[0-9]+$ ]] || fail "$1: want ADDR,PORT,TO,TOPORT"
}

valid_tag() {
	[[ $1 =~ ^rehearse-[a-z0-9_.-]+$ ]] || fail "tag $1: want rehearse-<run>-<fault>"
}

cmd=${1:-}
shift || true
case $cmd in
cut)
	[ $# -ge 2 ] || fail "usage: cut TAG ADDR..."
	tag=$1
	shift
	valid_tag "$tag"
	# A cut that fails half-way takes back what it added.
	trap 'remove exact "$tag"' ERR
	for a in "$@"; do
		t=$(family "$a")
		"$t" -w -I OUTPUT 1 -d "$a" -m comment --comment "$tag" -j DROP
		"$t" -w -I INPUT 1 -s "$a" -m comment --comment "$tag" -j DROP
	done
	trap - ERR
	echo "rehearse-netfilter: $tag drops packets to and from $*"
	;;
redirect)
	[ $# -ge 2 ] || fail "usage: redirect TAG ADDR,PORT,TO,TOPORT..."
	tag=$1
	shift
	valid_tag "$tag"
	for m in "$@"; do
		mapping "$m"
		[ -n "$m_to" ] || fail "$m: want ADDR,PORT,TO,TOPORT"
	done
	# A redirect that fails half-way takes back what it added.
	trap 'remove exact "$tag"' EXIT
	for m in "$@"; do
		mapping "$m"
		t=$(family "$m_addr")
		to="$m_to:$m_toport"
		[ "$t" = iptables ] || to="[$m_to]:$m_toport"
		"$t" -w -t nat -I OUTPUT 1 -p tcp -d "$m_addr" --dport "$m_port" \
			-m comment --comment "$tag" -j DNAT --to-destination "$to"
	done
	for m in "$@"; do
		mapping "$m"
		forget "$m_addr" "$m_port"
	done
	trap - EXIT
	echo "rehearse-netfilter: $tag redirects $*"
	;;
forget)
	[ $# -ge 1 ] || fail "usage: forget ADDR,PORT..."
	for m in "$@"; do
		mapping "$m"
		forget "$m_addr" "$m_port"
	done
	;;
heal)
	[ $# -eq 1 ] || fail "usage: heal TAG"
	valid_tag "$1"
	remove exact "$1"
	;;
sweep)
	[ $# -eq 1 ] || fail "usage: sweep PREFIX"
	valid_tag "$1"
	remove prefix "$1"
	;;
list)
	[ $# -eq 1 ] || fail "usage: list PREFIX"
	valid_tag "$1"
	for t in iptables ip6tables; do tagged "$t" prefix "$1"; done
	;;
*)
	fail "usage: rehearse-netfilter cut|redirect|forget|heal|sweep|list ..."
	;;
esac
