#!/bin/bash
# Container entrypoint: the first argument picks the program, the rest are its arguments.
#
#   order-ingest | status-sync | shipment-feedback | inventory-sync | feed-poller   a service
#   notification-listener                                                           Amazon's notifications from SQS
#   console                                                                         the web console
#   ctl ARGS...                                                                     the operator CLI
#   migrate                                                                         same as `ctl migrate`
#   spapi-sim ARGS...                                                               the SP-API simulator
#   demo ARGS...                                                                    the end-to-end demo (needs PostgreSQL and RabbitMQ)
#   probe PATH [PORT]                                                               HTTP health check (exit 0 on 200)
#
# tini is PID 1 (see the Dockerfile), so `exec` leaves the program as tini's only child: SIGTERM
# reaches it directly and zombies are reaped.
#
# CONNECTOR_ENCRYPTION_KEYS_FILE: if set (and CONNECTOR_ENCRYPTION_KEYS is not), the keys are read
# from that file, e.g. a Secret mounted as a volume, so they never appear in the pod spec.
set -euo pipefail

bin_dir=${CONNECTOR_BIN_DIR:-/usr/local/bin}
services="order-ingest status-sync shipment-feedback inventory-sync feed-poller"

usage() {
  cat >&2 <<USAGE
usage: <image> PROGRAM [ARGS...]
  services:  ${services}
  notification-listener  Amazon's notifications from SQS (SQS_QUEUE_URL)
  console    the web console (port 8080)
  ctl ...    operator CLI (ctl --help)
  migrate    apply the database migrations (ctl migrate)
  spapi-sim  SP-API simulator (spapi-sim --listen 0.0.0.0:8700)
  demo       the five actions end to end against the simulator
  probe PATH [PORT]  GET http://127.0.0.1:PORT/PATH, exit 0 on HTTP 200 (PORT defaults to 9000)
USAGE
}

load_keys_file() {
  local file=${CONNECTOR_ENCRYPTION_KEYS_FILE:-}
  if [ -n "$file" ] && [ -z "${CONNECTOR_ENCRYPTION_KEYS:-}" ]; then
    if [ ! -r "$file" ]; then
      echo "entrypoint: CONNECTOR_ENCRYPTION_KEYS_FILE=$file is not readable" >&2
      exit 78
    fi
    CONNECTOR_ENCRYPTION_KEYS=$(tr -d ' \r\n' <"$file")
    export CONNECTOR_ENCRYPTION_KEYS
  fi
  unset CONNECTOR_ENCRYPTION_KEYS_FILE
}

run() {
  local program=$1
  shift
  if [ ! -x "$bin_dir/$program" ]; then
    echo "entrypoint: $program is not in this image ($bin_dir/$program)" >&2
    exit 127
  fi
  load_keys_file
  exec "$bin_dir/$program" "$@"
}

# HTTP GET with bash's /dev/tcp: the runtime image has no curl. Prints the status line on failure.
probe() {
  local path=${1:-/readyz} port=${2:-9000} status
  exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
  IFS= read -r -t 5 status <&3 || status=""
  exec 3<&- 3>&-
  case "$status" in
    "HTTP/1."[01]" 200"*) exit 0 ;;
    *) echo "probe $path: ${status:-no answer}" >&2; exit 1 ;;
  esac
}

program=${1:-}
[ $# -gt 0 ] && shift
case "$program" in
  order-ingest | status-sync | shipment-feedback | inventory-sync | feed-poller | notification-listener | console | ctl | spapi-sim | demo)
    run "$program" "$@" ;;
  migrate)
    run ctl migrate "$@" ;;
  probe)
    probe "$@" ;;
  "" | help | -h | --help)
    usage
    [ -n "$program" ] || exit 64
    ;;
  *)
    echo "entrypoint: unknown program \"$program\"" >&2
    usage
    exit 64
    ;;
esac
