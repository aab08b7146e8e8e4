#!/bin/bash
# Fault: an agent SIGKILLed, restarted with the same drift file (issue #10 part 8).
#   1. A client on a simulated clock running 40 ppm fast (--sim-freq-ppm=40) syncs to a server
#      agent until its frequency is learned (status frequency_ppm within 1 ppm of +40: the
#      clock runs fast); then a clean stop writes its drift file (the agent writes it hourly
#      and at exit), holding the correction, about -40 ppm.
#   2. It runs again from that file and is SIGKILLed (the drift file must survive intact: it is
#      replaced by rename, never written in place).
#   3. Restarted with the same drift file while the server is SIGSTOPped (so that nothing can be
#      learnt before we look), it must
#        - log "frequency X ppm from FILE", and report a status frequency_ppm within 0.5 ppm
#          of minus the file's value (status: + = the clock runs fast; file: the correction)
#          before it has a single sample (not 0, to be re-learnt);
#        - never step: no "step" in its log, and its true offset (its served time, read with an
#          NTP query, vs this machine's clock) stays below 10 ms (it starts at +1 ms; the step
#          threshold is 128 ms).
# What a broken agent shows: a torn or empty drift file after the kill (the file check fails);
# a restart at frequency 0 (the status frequency check fails: 40 ppm off); a step.
source "$(dirname "$0")/lib.sh"
faults_init "$@"

DRIFT="$WORK/client.drift"

start_controller controller
start_server_agent
client_conf="# A client of the server agent, with a drift file.
server 127.0.0.1:$SPORT iburst minpoll 4 maxpoll 4
driftfile $DRIFT
controller 127.0.0.1:$CPORT
node_name client"
start_client_with_drift() {  # NAME SIM_OFFSET
  start_agent "$1" "$client_conf" --sim-offset="$2" --sim-freq-ppm=40 --sim-wander=0 \
    --node-name client
}
freq_of() { local_json "$1" | jget 'd.get("frequency_ppm", 0.0)'; }

# --- 1. learn the frequency, clean stop: the drift file is written ---------------------------
start_client_with_drift client-a +20ms
learned() { local_is client-a 'abs(d.get("frequency_ppm", 0.0) - 40) < 1'; }
wait_until 100 "client-a learned its frequency (within 1 ppm of +40)" learned
log "client-a frequency: $(freq_of client-a) ppm"
stop client-a
[ -s "$DRIFT" ] || fail "no drift file written at a clean stop"
written=$(cat "$DRIFT")
log "drift file after the clean stop: '$written'"
awk -v f="$written" 'BEGIN { exit !(f + 0 < -30 && f + 0 > -50) }' ||
  fail "drift file holds '$written', expected about -40 (ppm: the correction of a clock 40 ppm fast)"

# --- 2. run from it, SIGKILL ------------------------------------------------------------------
start_client_with_drift client-b +1ms
wait_until 30 "client-b synchronised" local_is client-b 'd.get("state") == "SYNC_STATE_SYNCHRONISED"'
signal client-b KILL
reap client-b
after_kill=$(cat "$DRIFT")
[ "$(wc -l <"$DRIFT")" -le 1 ] && grep -Eq '^[-+]?[0-9]+(\.[0-9]+)?$' "$DRIFT" ||
  fail "the drift file is torn after the kill: '$(cat -A "$DRIFT")'"
[ "$after_kill" = "$written" ] ||
  fail "the drift file holds '$after_kill' after the kill"
log "ok: drift file intact after the kill: '$after_kill'"

# --- 3. restart from it: saved frequency, no step ---------------------------------------------
signal server STOP
start_client_with_drift client-c +1ms
grep -q "frequency [-+]*[0-9.]* ppm from $DRIFT" "$WORK/client-c.log" ||
  fail "client-c did not read its drift file"
f0=$(freq_of client-c)
log "client-c starts at $f0 ppm (file: $after_kill)"
awk -v a="$f0" -v b="$after_kill" 'BEGIN { d = a + b; if (d < 0) d = -d; exit !(d < 0.5) }' ||
  fail "client-c started at $f0 ppm, not at the drift file's (minus) $after_kill"
local_is client-c 'd.get("state") != "SYNC_STATE_SYNCHRONISED"' ||
  fail "client-c synchronised to a stopped server?"
signal server CONT
wait_until 30 "client-c synchronised" local_is client-c 'd.get("state") == "SYNC_STATE_SYNCHRONISED"' 
max_abs=0
for _ in $(seq 20); do
  q=$(python3 "$TOOL" query 127.0.0.1 "$APORT") || fail "client-c does not answer NTP"
  off=$(jget 'd["offset_s"]' <<<"$q")
  max_abs=$(awk -v m="$max_abs" -v o="$off" 'BEGIN { if (o < 0) o = -o; print (o > m ? o : m) }')
  sleep 1
done
f1=$(freq_of client-c)
log "client-c after 20 s: frequency $f1 ppm, largest |true offset| $max_abs s"
awk -v m="$max_abs" 'BEGIN { exit !(m < 0.010) }' ||
  fail "client-c's clock moved $max_abs s from true time: a step or a wrong frequency"
awk -v a="$f1" -v b="$after_kill" 'BEGIN { d = a + b; if (d < 0) d = -d; exit !(d < 2.5) }' ||
  fail "client-c's frequency wandered to $f1 ppm from the saved $after_kill"
if grep -i "step" "$WORK/client-c.log"; then fail "client-c stepped its clock"; fi
local_is client-c 'd.get("state") == "SYNC_STATE_SYNCHRONISED"' ||
  fail "client-c is not synchronised: $(local_json client-c)"
log "PASS"
