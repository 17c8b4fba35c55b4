#!/bin/bash
# rehearse-netfilter: the packet filter changes of rehearse's network
# faults, run in a service's network namespace.
#
#   cut TAG ADDR...   drop every packet to and from each ADDR, in rules
#                     whose comment is TAG
#   heal TAG          delete the rules whose comment is exactly TAG
#   sweep PREFIX      delete the rules whose comment starts with PREFIX
#   list PREFIX       print the rules whose comment starts with PREFIX
#
# Rules go first in OUTPUT and INPUT, so that no rule of the service's own
# lets the packets through. Only rules with rehearse's comment are ever
# deleted; every other rule of the namespace stays as it was.
set -euo pipefail
set -f # rules are split into words below; no word is a pattern
fail() {
	echo "rehearse-netfilter: $*" >&2
	exit 1
}
family() { case $1 in *:*) echo ip6tables ;; *) echo iptables ;; esac; }

# tagged T MODE TAG prints the rules of T (iptables or ip6tables), as
# T -S prints them, whose comment is TAG (MODE exact) or starts with it
# (MODE prefix). A T that cannot list (no IPv6 in the namespace) has none.
tagged() {
	local t=$1 mode=$2 tag=$3 rules r
	rules=$("$t" -w -S 2>/dev/null) || return 0
	while IFS= read -r r; do
		case $mode in
		exact) [[ " $r " == *" --comment $tag "* ]] && echo "$r" ;;
		prefix) [[ " $r " == *" --comment $tag"* ]] && echo "$r" ;;
		esac
	done <<<"$rules"
	return 0
}

# remove MODE TAG deletes the tagged rules of both families.
remove() {
	local t r
	for t in iptables ip6tables; do
		while IFS= read -r r; do
			[ -n "$r" ] || continue
			# shellcheck disable=SC2086 # a rule is words, none quoted
			"$t" -w -D ${r#-A } || fail "$t: cannot delete rule: $r"
		done < <(tagged "$t" "$1" "$2")
	done
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
	fail "usage: rehearse-netfilter cut|heal|sweep|list ..."
	;;
esac
