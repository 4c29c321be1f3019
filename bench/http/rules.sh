#!/usr/bin/env bash
# bench/http/rules.sh PORT: loads the 100 rules of the outpost-rules benchmark server
# (bench/http/run.sh) over PUT /v1/rules/{name}. The benchmark posts to bench/t0/s0000 ..
# s0999; rule k selects the ten sensors bench/t0/s0<kk>* (kk = k mod 100, two digits), so
# every reading is evaluated by exactly one rule. Rules 0..49 are thresholds, 50..99
# tumbling 10 s windows writing avg and max derived series. Their levels sit above the
# benchmark's values (20..40): what is measured is evaluation, not a storm of alerts.
# $PROBE is the probe command (default: /usr/bin/python3 bench/http/probe.py).
set -euo pipefail
port=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
probe=${PROBE:-/usr/bin/python3 $here/probe.py}
for k in $(seq 0 99); do
    glob=$(printf 'bench/t0/s0%02d*' "$k")
    if [ "$k" -lt 50 ]; then
        body="{\"kind\":\"threshold\",\"sensors\":\"$glob\",\"above\":\"45\",\"clear\":\"42\"}"
    else
        body="{\"kind\":\"window\",\"sensors\":\"$glob\",\"window\":\"10s\",\"fns\":\"avg,max\",\"alert_on\":\"avg > 45\"}"
    fi
    answer=$($probe put "$port" "/v1/rules/bench-$k" "$body")
    case $answer in 200*|201*) ;; *) echo "rules.sh: PUT /v1/rules/bench-$k answered: $answer" >&2; exit 1 ;; esac
done
echo "rules.sh: 100 rules loaded on port $port"
