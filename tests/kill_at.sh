#!/usr/bin/env bash
# kill_at.sh MOMENT COMMAND…: runs COMMAND with its pause points on (src/pause_points.rs),
# lets it go on at each point until it reports MOMENT, then kills it there with SIGKILL.
set -euo pipefail
moment=$1; shift
coproc RUN { BACKPROP_PAUSE_POINTS=1 "$@" 2>&1 >/dev/null; }
pid=$RUN_PID
while IFS= read -r line <&"${RUN[0]}"; do
  if [[ $line == "pause: $moment" ]]; then
    kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
    exit 0
  fi
  [[ $line == pause:* ]] && echo >&"${RUN[1]}"
done
echo "kill_at.sh: the command ended before $moment" >&2
exit 1
