#!/usr/bin/env bash
# Starts N ranks of a command on this machine with the torchrun-style variables duet reads
# (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), prefixes every output line with
# "[rank r]", forwards SIGINT/SIGTERM/SIGHUP to all ranks, and exits non-zero when any rank
# fails (with the first failing rank's exit code). When one rank fails, the others normally end
# themselves within distributed.timeout_seconds, naming it; ranks still running after --grace
# seconds are terminated.
#
#   scripts/launch_local.sh -n 4 build/duet train configs/fashion-mnist.yaml
#   scripts/launch_local.sh -n 2 --port 29501 -- build/tests/distributed/dist_bench --n 256
set -uo pipefail

usage() {
  cat <<'EOF'
usage: scripts/launch_local.sh [-n N] [--port PORT] [--addr ADDR] [--grace SECONDS] [--] COMMAND [ARGS...]
  -n, --nproc N    ranks to start (default 2)
  --port PORT      rendezvous port (default: $MASTER_PORT, else a free port)
  --addr ADDR      rendezvous address (default: $MASTER_ADDR, else 127.0.0.1)
  --grace SECONDS  after a rank fails, wait this long for the others to stop (default 60)
EOF
}

nproc=2
port="${MASTER_PORT:-}"
addr="${MASTER_ADDR:-127.0.0.1}"
grace=60
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n|--nproc) nproc="${2:?-n needs a value}"; shift 2 ;;
    --port) port="${2:?--port needs a value}"; shift 2 ;;
    --addr) addr="${2:?--addr needs a value}"; shift 2 ;;
    --grace) grace="${2:?--grace needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "launch_local.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -eq 0 ]]; then
  echo "launch_local.sh: no command given" >&2
  usage >&2
  exit 2
fi
if ! [[ "$nproc" =~ ^[1-9][0-9]*$ ]]; then
  echo "launch_local.sh: -n '$nproc' is not a positive integer" >&2
  exit 2
fi
if ! [[ "$grace" =~ ^[0-9]+$ ]]; then
  echo "launch_local.sh: --grace '$grace' is not a number of seconds" >&2
  exit 2
fi
if [[ -z "$port" ]]; then
  # A port the kernel hands out and releases; the rendezvous binds it right after.
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 29500)
fi
if ! [[ "$port" =~ ^[0-9]+$ ]] || (( port < 1 || port > 65535 )); then
  echo "launch_local.sh: port '$port' is not a TCP port" >&2
  exit 2
fi

# One rank: the command in the foreground of its own process group (set -m below), its stdout
# and stderr through "[rank r] " filters that ignore the signals, so they still print what the
# rank says on its way out. The no-op traps keep this wrapper alive until the command has ended
# (and, unlike ignoring, are not inherited by it).
run_rank() {
  local r=$1
  shift
  trap ':' INT TERM HUP
  exec 3> >(trap '' INT TERM HUP; exec sed -u "s/^/[rank $r] /")
  local out_filter=$!
  exec 4> >(trap '' INT TERM HUP; exec sed -u "s/^/[rank $r] /" >&2)
  local err_filter=$!
  "$@" >&3 2>&4 3>&- 4>&-
  local code=$?
  exec 3>&- 4>&-
  wait "$out_filter" "$err_filter" 2>/dev/null
  return "$code"
}

# Job control: every rank gets its own process group, so a Ctrl-C reaches this script only and
# is forwarded (once) to every rank's group, and the ranks do not start with SIGINT ignored as
# background commands of a non-interactive shell otherwise would.
set -m
pids=()
declare -A rank_of=()
for (( r = 0; r < nproc; r++ )); do
  RANK=$r WORLD_SIZE=$nproc LOCAL_RANK=$r LOCAL_WORLD_SIZE=$nproc \
  MASTER_ADDR=$addr MASTER_PORT=$port run_rank "$r" "$@" &
  pids+=($!)
  rank_of[$!]=$r
done

forward() {
  local sig=$1
  echo "launch_local.sh: forwarding SIG$sig to the ranks" >&2
  for p in "${pids[@]}"; do
    kill -s "$sig" -- "-$p" 2>/dev/null
  done
}
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward HUP' HUP

status=0
failed_rank=""
deadline=""
declare -A done_=()
while (( ${#done_[@]} < nproc )); do
  for p in "${pids[@]}"; do
    if [[ -n "${done_[$p]:-}" ]] || kill -0 "$p" 2>/dev/null; then
      continue
    fi
    wait "$p"
    code=$?
    done_[$p]=1
    r=${rank_of[$p]}
    if (( code != 0 )); then
      echo "launch_local.sh: rank $r exited with code $code" >&2
      if (( status == 0 )); then
        status=$code
        failed_rank=$r
        deadline=$(( SECONDS + grace ))
      fi
    fi
  done
  if [[ -n "$deadline" ]] && (( SECONDS >= deadline )) && (( ${#done_[@]} < nproc )); then
    if [[ -z "${terminated:-}" ]]; then
      echo "launch_local.sh: ranks still running ${grace} s after rank $failed_rank failed; terminating them" >&2
      forward TERM
      terminated=1
      deadline=$(( SECONDS + 10 ))
    else
      forward KILL
      deadline=""
    fi
  fi
  sleep 0.1
done
exit "$status"
