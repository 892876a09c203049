#!/bin/sh
# Entry point of the distopt image.
#
#   worker [FLAGS]   distopt worker, configured from the environment (the default)
#   run FILE [FLAGS] distopt run against the same Redis
#   anything else    run as a command (e.g. "distopt status", "sh")
#
# Environment: DISTOPT_REDIS_URL (required), DISTOPT_SECRET (shared signing secret),
# DISTOPT_QUEUE (default "distopt"), DISTOPT_PROCESSES (worker processes, default 1).
# exec hands PID 1 to distopt, so `docker stop` (SIGTERM) reaches the worker, which
# finishes or hands back its current trial before exiting. distopt reads the Redis URL
# from DISTOPT_REDIS_URL itself: it is never put on a command line, where `ps` shows it.
set -eu

: "${DISTOPT_REDIS_URL:?set DISTOPT_REDIS_URL, e.g. redis://:password@redis:6379/0}"

cmd="${1:-worker}"
[ "$#" -gt 0 ] && shift

case "$cmd" in
  worker)
    exec distopt worker \
      --queue "${DISTOPT_QUEUE:-distopt}" \
      --processes "${DISTOPT_PROCESSES:-1}" "$@"
    ;;
  run)
    exec distopt run "$@" --queue "${DISTOPT_QUEUE:-distopt}"
    ;;
  *)
    exec "$cmd" "$@"
    ;;
esac
