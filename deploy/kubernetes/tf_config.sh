#!/bin/sh
# TF_CONFIG for the pod of a StatefulSet, from its ordinal, then runs the command given.
#   WORKERS  how many workers (the StatefulSet's replicas)
#   SERVICE  the headless Service's name (pods are <statefulset>-<i>.<service>)
#   PORT     the workers' port (default 2222)
#   HOSTNAME the pod's name, <statefulset>-<ordinal> (set by Kubernetes)
set -eu
name=${HOSTNAME:?}
ordinal=${name##*-}
set_name=${name%-*}
case "$ordinal" in
  ''|*[!0-9]*) echo "error: HOSTNAME $name does not end in -<ordinal>" >&2; exit 2 ;;
esac
port=${PORT:-2222}
workers=""
i=0
while [ "$i" -lt "${WORKERS:?}" ]; do
  workers="$workers${workers:+, }\"$set_name-$i.${SERVICE:?}:$port\""
  i=$((i + 1))
done
TF_CONFIG="{\"cluster\": {\"worker\": [$workers]}, \"task\": {\"type\": \"worker\", \"index\": $ordinal}}"
export TF_CONFIG
exec "$@"
