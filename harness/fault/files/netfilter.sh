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
#   forget ADDR,PORT[,TO,TOPORT]...
#                     delete the connection tracking entries of the
#                     namespace's TCP connections to ADDR:PORT (only those
#                     redirected to TO:TOPORT, when given), so that their
#                     next packet meets the nat rules as they are now
#   allow TAG CLIENT,LISTEN,LPORT,UPSTREAM,UPORT...
#                     in a proxy's namespace (the toxiproxy sidecar): let
#                     only CLIENT open TCP connections to LISTEN:LPORT, and
#                     let the namespace open them to UPSTREAM:UPORT (INPUT
#                     and OUTPUT ACCEPT, comment TAG), ahead of the
#                     sidecar's own rules, which refuse everything else
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
set -f # no word is ever a file name pattern
fail() {
	echo "rehearse-netfilter: $*" >&2
	exit 1
}
family() { case $1 in *:*) echo ip6tables ;; *) echo iptables ;; esac; }

# matches MODE TAG RULE: whether RULE, a line of iptables -S, has a
# comment that is TAG (MODE exact) or starts with it (MODE prefix). Quoted
# arguments are blanked first: iptables quotes a comment with spaces or
# other odd characters, never one of ours (valid_tag), so that words
# inside a comment a service wrote (with NET_ADMIN) match nothing.
matches() {
	local r
	r=$(sed -E 's/"([^"\\]|\\.)*"/""/g' <<<"$3")
	case $1 in
	exact) [[ " $r " == *" --comment $2 "* ]] ;;
	prefix) [[ " $r " == *" --comment $2"* ]] ;;
	*) return 1 ;;
	esac
}

# tagged T MODE TAG prints the rules of T (iptables or ip6tables), as
# T -S prints them (with -t nat first for the nat table), whose comment is
# TAG (MODE exact) or starts with it (MODE prefix). A T that cannot list
# (no IPv6 in the namespace) has none.
tagged() {
	local t=$1 mode=$2 tag=$3 table pre rules r
	for table in filter nat; do
		rules=$("$t" -w -t "$table" -S 2>/dev/null) || continue
		pre=""
		[ "$table" = filter ] || pre="-t $table "
		while IFS= read -r r; do
			[[ $r == "-A "* ]] && matches "$mode" "$tag" "$r" && echo "$pre$r"
		done <<<"$rules"
	done
	return 0
}

# numbered T TABLE MODE TAG prints "CHAIN N" for each tagged rule of a
# table, N its number in its chain, the last rule first: deleting them in
# that order leaves the numbers of the others as they were. A rule is
# deleted by its number, never by its words: a service's rule may hold
# quoted words that would not survive being split again.
numbered() {
	local t=$1 table=$2 mode=$3 tag=$4 rules r chain
	local -A n=()
	local out=()
	rules=$("$t" -w -t "$table" -S 2>/dev/null) || return 0
	while IFS= read -r r; do
		[[ $r == "-A "* ]] || continue
		chain=${r#-A }
		chain=${chain%% *}
		n[$chain]=$((${n[$chain]:-0} + 1))
		matches "$mode" "$tag" "$r" && out=("$chain ${n[$chain]}" "${out[@]}")
	done <<<"$rules"
	[ ${#out[@]} -eq 0 ] || printf '%s\n' "${out[@]}"
}

# remove MODE TAG deletes the tagged rules of both families and tables,
# then checks that none is left (a service that changes its rules meanwhile
# shifts the numbers: up to three rounds).
remove() {
	local t table c chain num round
	for round in 1 2 3; do
		for t in iptables ip6tables; do
			for table in filter nat; do
				while IFS= read -r c; do
					[ -n "$c" ] || continue
					chain=${c% *}
					num=${c##* }
					"$t" -w -t "$table" -D "$chain" "$num" || fail "$t: cannot delete rule $num of $table $chain"
				done < <(numbered "$t" "$table" "$1" "$2")
			done
		done
		[ -n "$(tagged iptables "$1" "$2")$(tagged ip6tables "$1" "$2")" ] || return 0
	done
	fail "rules tagged $2 are left: $(tagged iptables "$1" "$2")$(tagged ip6tables "$1" "$2")"
}

# forget ADDR PORT [TO TOPORT] deletes the tracked TCP connections to
# ADDR:PORT, only those whose answers come from TO:TOPORT when given (a
# proxy a redirect sends them to, or ADDR:PORT itself: those not
# redirected). conntrack fails when there is none: that is not an error
# here.
forget() {
	local out f=ipv4 reply=()
	[[ $1 == *:* ]] && f=ipv6
	[ -z "${3:-}" ] || reply=(--reply-src "$3" --reply-port-src "$4")
	out=$(conntrack -D -f "$f" -p tcp --orig-dst "$1" --orig-port-dst "$2" "${reply[@]}" 2>&1) ||
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
	# Only the connections that go to ADDR:PORT itself: those another
	# redirect (a toxic still in force) sends elsewhere are left alone.
	for m in "$@"; do
		mapping "$m"
		forget "$m_addr" "$m_port" "$m_addr" "$m_port"
	done
	trap - EXIT
	echo "rehearse-netfilter: $tag redirects $*"
	;;
forget)
	[ $# -ge 1 ] || fail "usage: forget ADDR,PORT[,TO,TOPORT]..."
	for m in "$@"; do
		mapping "$m"
		if [ -n "$m_to" ]; then
			forget "$m_addr" "$m_port" "$m_to" "$m_toport"
		else
			forget "$m_addr" "$m_port"
		fi
	done
	;;
allow)
	[ $# -ge 2 ] || fail "usage: allow TAG CLIENT,LISTEN,LPORT,UPSTREAM,UPORT..."
	tag=$1
	shift
	valid_tag "$tag"
	ip='^[0-9a-fA-F.:]+$'
	for m in "$@"; do
		IFS=, read -r client listen lport up uport extra <<<"$m"
		[[ $client =~ $ip && $listen =~ $ip && $up =~ $ip && $lport =~ ^[0-9]+$ && $uport =~ ^[0-9]+$ && -z $extra ]] ||
			fail "$m: want CLIENT,LISTEN,LPORT,UPSTREAM,UPORT"
		[ "$(family "$client")" = "$(family "$listen")" ] && [ "$(family "$listen")" = "$(family "$up")" ] ||
			fail "$m: mixes IPv4 and IPv6 addresses"
	done
	# An allow that fails half-way takes back what it added.
	trap 'remove exact "$tag"' ERR
	for m in "$@"; do
		IFS=, read -r client listen lport up uport <<<"$m"
		t=$(family "$listen")
		"$t" -w -I INPUT 1 -p tcp -s "$client" -d "$listen" --dport "$lport" \
			-m comment --comment "$tag" -j ACCEPT
		"$t" -w -I OUTPUT 1 -p tcp -d "$up" --dport "$uport" \
			-m comment --comment "$tag" -j ACCEPT
	done
	trap - ERR
	echo "rehearse-netfilter: $tag allows $*"
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
	fail "usage: rehearse-netfilter cut|redirect|forget|allow|heal|sweep|list ..."
	;;
esac
