#!/bin/bash
# Each argument is LISTEN:PROTO:HOST:PORT. One socat per port; the gateway
# exits when any of them dies, so a broken forward is visible.
set -u
for spec in "$@"; do
	IFS=: read -r listen proto host port <<<"$spec"
	if [ "$proto" = udp ]; then
		socat "UDP-LISTEN:$listen,fork,reuseaddr" "UDP:$host:$port" &
	else
		socat "TCP-LISTEN:$listen,fork,reuseaddr" "TCP:$host:$port" &
	fi
done
wait -n
exit 1
