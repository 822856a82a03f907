#!/usr/bin/env bash
# The tracker's Redis store on the deployments large teams run: a 3-primary/3-replica Redis
# Cluster (`redis-cli --cluster create`) and a primary + replica under 3 Sentinels, all on
# 127.0.0.1 ports 7700-7799. Runs the shared store suite (tests/tracker_redis_suite.rs) on
# standalone, cluster and Sentinel; then, on each, switches the primary over (its pooled
# connections must follow) and kills a primary during a run of settlements, printing the
# failover figures. Every server is stopped on exit.
# Needs: cargo, redis-server and redis-cli (Debian packages redis-server, redis-tools;
# `redis-server --sentinel` is the Sentinel).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d)
PIDS=()
step() { echo "--- test-redis-ha: $*"; }
die() { echo "test-redis-ha: $*" >&2; exit 1; }

cleanup() {
  # Only the servers this script started.
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# A signal ends the script through the EXIT trap, so the servers never outlive it.
trap 'exit 130' INT TERM

for tool in cargo redis-server redis-cli; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
export FOTP_REQUIRE_REDIS=1

# Polls a condition (a command) every 100 ms for at most $1 seconds.
until_true() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
answers() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }

# redis-server in the foreground (so the pid is the server's), data in its own directory.
start_server() {
  local port=$1; shift
  mkdir -p "$WORK/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/$port" --save '' \
    --appendonly no --daemonize no --logfile "$WORK/$port/log" "$@" &
  PIDS+=($!)
}

CLUSTER_PORTS=(7700 7701 7702 7703 7704 7705)
PRIMARY=7710 REPLICA=7711 SENTINELS=(7720 7721 7722)

step "Redis Cluster: 3 primaries, 3 replicas"
for p in "${CLUSTER_PORTS[@]}"; do
  start_server "$p" --cluster-enabled yes --cluster-config-file "$WORK/$p/nodes.conf" \
    --cluster-node-timeout 2000
done
for p in "${CLUSTER_PORTS[@]}"; do until_true 30 answers "$p" || die "node $p did not start"; done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") \
  --cluster-replicas 1 --cluster-yes >"$WORK/cluster-create.log" ||
  { cat "$WORK/cluster-create.log" >&2; die "cluster create failed"; }
cluster_ok() {
  for p in "${CLUSTER_PORTS[@]}"; do
    redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' || return 1
  done
  # Every replica has finished its first sync.
  [ "$(for p in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$p" info replication; done |
    grep -c 'master_link_status:up')" -eq 3 ]
}
until_true 60 cluster_ok || die "the cluster never reached state ok"

step "Sentinel: a primary, a replica, 3 Sentinels"
start_server "$PRIMARY"
start_server "$REPLICA" --replicaof 127.0.0.1 "$PRIMARY"
for p in "${SENTINELS[@]}"; do
  mkdir -p "$WORK/$p"
  cat >"$WORK/$p/sentinel.conf" <<EOF
port $p
bind 127.0.0.1
dir $WORK/$p
logfile $WORK/$p/log
sentinel monitor mymaster 127.0.0.1 $PRIMARY 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 10000
EOF
  redis-server "$WORK/$p/sentinel.conf" --sentinel &
  PIDS+=($!)
done
replica_synced() { redis-cli -p "$REPLICA" info replication | grep -q 'master_link_status:up'; }
until_true 30 replica_synced || die "the replica never synced"
# Each Sentinel knows the replica and the two other Sentinels (so a failover can be agreed).
sentinels_ready() {
  for p in "${SENTINELS[@]}"; do
    redis-cli -p "$p" sentinel master mymaster | tr '\n' ' ' |
      grep -Eq 'num-other-sentinels 2 .*' || return 1
    [ "$(redis-cli -p "$p" sentinel replicas mymaster | grep -c "^$REPLICA\$")" -ge 1 ] || return 1
  done
}
until_true 60 sentinels_ready || die "the Sentinels never found each other and the replica"

CLUSTER_URL="redis+cluster://$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]:0:3}" | sed 's/,$//')"
SENTINEL_URL="redis+sentinel://$(printf '127.0.0.1:%s,' "${SENTINELS[@]}" | sed 's/,$//')/mymaster"

# Empty: the suite starts its own standalone server (scripts/test's cargo test ran that one).
urls=("$CLUSTER_URL" "$SENTINEL_URL")
[ -n "${FOTP_WORKSPACE_CHECKED:-}" ] || urls=("" "${urls[@]}")
cargo build -p fotp --tests --quiet
for url in "${urls[@]}"; do
  step "shared store suite on ${url:-a standalone redis-server}"
  FOTP_TEST_REDIS_URL=$url cargo test -p fotp --test tracker_redis_suite --quiet
done

for url in "$CLUSTER_URL" "$SENTINEL_URL"; do
  step "switchover (the replica promoted, the primary demoted) on $url"
  FOTP_TEST_REDIS_URL=$url cargo test -p fotp --test tracker_redis_suite --quiet -- \
    --ignored --exact switchover_is_followed_transparently
  step "failover during settlements on $url"
  if ! FOTP_TEST_REDIS_URL=$url cargo test -p fotp --test tracker_redis_suite --quiet -- \
    --ignored --exact failover_during_settlements --nocapture 2>&1 | tee "$WORK/failover.log"; then
    die "the failover test failed on $url"
  fi
  grep 'FAILOVER FIGURES' "$WORK/failover.log" >>"$WORK/figures"
done

step "figures"
cat "$WORK/figures"
echo "test-redis-ha: all checks passed"
