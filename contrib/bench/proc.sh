# shellcheck shell=bash
# Process helpers of the benchmark scripts (bench.sh, http.sh), sourced.
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
