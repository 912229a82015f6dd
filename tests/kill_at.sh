#!/usr/bin/env bash
# kill_at.sh MOMENT COMMAND…: runs COMMAND with its pause points on (src/pause_points.rs),
# lets it go on at each point until it reports MOMENT, then kills it there with SIGKILL and
# checks that it is gone.
set -euo pipefail
moment=$1; shift
# `exec`: the coprocess is COMMAND itself, so its pid is the one killed.
coproc RUN { export BACKPROP_PAUSE_POINTS=1; exec "$@" 2>&1 >/dev/null; }
pid=$RUN_PID
while IFS= read -r line <&"${RUN[0]}"; do
  if [[ $line == "pause: $moment" ]]; then
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    if kill -0 "$pid" 2>/dev/null; then
      echo "kill_at.sh: $pid survived SIGKILL" >&2
      exit 1
    fi
    exit 0
  fi
  [[ $line == pause:* ]] && echo >&"${RUN[1]}"
done
echo "kill_at.sh: the command ended before $moment" >&2
exit 1
