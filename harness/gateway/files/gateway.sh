#!/bin/bash
# Each argument is LISTEN:PROTO:HOST:PORT. One socat per port; the gateway
# exits when any of them dies, so a broken forward is visible.
set -u
# bash as PID 1 ignores SIGTERM unless it traps it: stop the forwards and
# exit 0 at once, instead of waiting for Docker's kill after its timeout.
trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
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
