# shellcheck shell=bash
# Helpers of the benchmark scripts (bench.sh, http.sh, tls.sh, chat.sh),
# sourced: processes, ports, and the arithmetic of their tables.
# They need a log function from the script that sources them.

# Pids of the children of $1, read from /proc with builtins (no fork per
# process).
children_of() {
    local stat rest pid ppid
    for stat in /proc/[0-9]*/stat; do
        { read -r rest <"$stat"; } 2>/dev/null || continue
        pid=${rest%% *}
        rest=${rest##*) }       # comm may hold spaces; the state follows ") "
        read -r _ ppid _ <<<"$rest"
        [[ $ppid == "$1" ]] && echo "$pid"
    done
    return 0
}

# True while process $1 exists and is not a zombie (kill -0 is true for an
# exited child that has not been waited for yet).
alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# Stop process $1 and its children: SIGTERM, up to $2 seconds (default 3)
# of grace, then SIGKILL for whatever is left, with a warning.
stop_pid() {
    local pid=$1 grace=${2:-3} kids kid i
    alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        log "warning: pid $pid still running $grace s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for kid in $kids; do
        alive "$kid" || continue
        log "warning: child $kid of $pid outlived it: SIGKILL"
        kill -KILL "$kid" 2>/dev/null || true
    done
}

# utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks, of
# process $1 and its children.
server_ticks() {
    local pid rest f total=0
    for pid in "$1" $(children_of "$1"); do
        { read -r rest <"/proc/$pid/stat"; } 2>/dev/null || continue
        rest=${rest##*) }
        read -r -a f <<<"$rest"   # f[0] is field 3, the state
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# A TCP port on 127.0.0.1 that no socket uses (listening, connected or in
# TIME_WAIT), below the ephemeral range so wrk's connections cannot take it.
free_port() {
    local i port
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 12000))
        # /proc/net/tcp* show ports as 4 hex digits after a colon.
        if ! grep -q ":$(printf '%04X' "$port") " /proc/net/tcp /proc/net/tcp6 \
            2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# Median of the numbers among $1 ... ("-" if there is none).
median() {
    printf '%s\n' "$@" | sort -g | awk '/^[0-9.]+$/ { a[++n] = $1 }
        END { if (n == 0) print "-"
              else if (n % 2) print a[(n + 1) / 2]
              else print (a[n / 2] + a[n / 2 + 1]) / 2 }'
}

# Number $1 with $2 decimals, or "-" as it is.
fmt_num() {
    if [[ $1 == - ]]; then
        echo -
    else
        printf "%.${2}f" "$1"
    fi
}

# $1 / $2 with 2 decimals ("-" if $2 is 0 or not a number).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b
        else print "-" }'
}
