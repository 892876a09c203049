#!/bin/sh
# Entry point of the distopt image.
#
#   worker [FLAGS]   distopt worker (the default)
#   run FILE [FLAGS] distopt run against the same Redis
#   anything else    run as a command (e.g. "distopt status", "sh")
#
# distopt reads its settings from the environment, so the user's flags are passed on
# as given and nothing is appended after them: DISTOPT_REDIS_URL (required),
# DISTOPT_SECRET (the shared signing secret), DISTOPT_QUEUE (default "distopt"),
# DISTOPT_PROCESSES (worker processes, default 1). A flag given here wins over its
# variable. The placeholders of .env.example are refused by distopt itself.
# exec hands PID 1 to distopt, so `docker stop` (SIGTERM) reaches the worker, which
# finishes or hands back its current trial before exiting. distopt reads the Redis URL
# from DISTOPT_REDIS_URL itself: it is never put on a command line, where `ps` shows it.
set -eu

: "${DISTOPT_REDIS_URL:?set DISTOPT_REDIS_URL, e.g. redis://:password@redis:6379/0}"

cmd="${1:-worker}"
[ "$#" -gt 0 ] && shift

case "$cmd" in
  worker)
    exec distopt worker "$@"
    ;;
  run)
    exec distopt run "$@"
    ;;
  *)
    exec "$cmd" "$@"
    ;;
esac
