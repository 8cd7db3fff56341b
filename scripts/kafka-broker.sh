#!/usr/bin/env bash
# A real Kafka-compatible broker on 127.0.0.1 for development and end-to-end tests: tansu
# (https://crates.io/crates/tansu, pure Rust, SQLite storage), built once from crates.io and cached
# under target/tools.
#
#   scripts/kafka-broker.sh start [PORT]          start it (default port 9092), state in target/kafka
#   scripts/kafka-broker.sh topic NAME [PARTS]    create a topic (default 4 partitions)
#   scripts/kafka-broker.sh stop                  stop it
#   scripts/kafka-broker.sh status                is it running?
#   scripts/kafka-broker.sh install               only build it (about 10 minutes on 2 cores, once)
#
# PORT can also come from LAMBDAFLOW_KAFKA_PORT; the state directory from LAMBDAFLOW_KAFKA_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=0.6.0
tools=$root/target/tools
bin=$tools/bin/tansu
state=${LAMBDAFLOW_KAFKA_DIR:-$root/target/kafka}
port=${2:-${LAMBDAFLOW_KAFKA_PORT:-9092}}

install() {
    if [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -q "$version"; then
        return
    fi
    echo "kafka-broker: building tansu $version from crates.io (once; about 10 minutes on 2 cores)" >&2
    cargo install --quiet --locked tansu --version "$version" --features libsql \
        --root "$tools" --target-dir "$root/target/tools-build"
}

running() {
    [[ -f $state/pid ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null
}

case ${1:-} in
install)
    install
    ;;
start)
    install
    if running; then
        echo "kafka-broker: already running (pid $(cat "$state/pid"), port $(cat "$state/port"))"
        exit 0
    fi
    mkdir -p "$state"
    cd "$state"
    # tansu takes the SQLite path relative to its working directory.
    nohup "$bin" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "sqlite://tansu.db" >"$state/broker.log" 2>&1 &
    echo $! >"$state/pid"
    echo "$port" >"$state/port"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "kafka-broker: tansu listening on 127.0.0.1:$port (log: $state/broker.log)"
            exit 0
        fi
        if ! running; then
            echo "kafka-broker: tansu exited; its log:" >&2
            tail -20 "$state/broker.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "kafka-broker: tansu did not listen on 127.0.0.1:$port within 10s" >&2
    exit 1
    ;;
topic)
    name=${2:?usage: kafka-broker.sh topic NAME [PARTITIONS]}
    parts=${3:-4}
    port=$(cat "$state/port" 2>/dev/null || echo 9092)
    "$bin" topic create --broker "tcp://127.0.0.1:$port" --partitions "$parts" "$name"
    echo "kafka-broker: topic $name with $parts partitions on 127.0.0.1:$port"
    ;;
stop)
    if running; then
        kill "$(cat "$state/pid")"
        for _ in $(seq 1 50); do running || break; sleep 0.1; done
        running && kill -9 "$(cat "$state/pid")"
        echo "kafka-broker: stopped"
    else
        echo "kafka-broker: not running"
    fi
    rm -f "$state/pid"
    ;;
status)
    if running; then
        echo "kafka-broker: running (pid $(cat "$state/pid"), port $(cat "$state/port"))"
    else
        echo "kafka-broker: not running"
        exit 1
    fi
    ;;
*)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
