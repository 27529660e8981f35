# Sourced by bench/send.sh and bench/send-postgres.sh (after ROOT is set and the working
# directory is ROOT): the knobs both share, the temporary directory and what is removed at exit,
# the binary, the contacts, and how one `send` is run, read back and checked.
#
#   BENCH_CONTACTS=100000 BENCH_SEED=2026 BENCH_KEEP=0 (1 keeps the temp dir), OUTREACH_BIN,
#   BENCH_OUTBOX_DIR (the outboxes in a temporary directory there, /dev/shm say, instead of
#   beside the ledger: 180,640 messages make ~1.5 GB of outbox; the ledger stays in TMPDIR).

N=${BENCH_CONTACTS:-100000}
SEED=${BENCH_SEED:-2026}
export OUTREACH_NOW=${OUTREACH_NOW:-2026-11-25T18:00:00Z}   # US midday: no quiet hours

say() { printf '==> %s\n' "$*" >&2; }
command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outreach-send-bench.XXXXXX")
# Commands run at exit, before the temp dir goes (a PostgreSQL cluster's stop): `at_exit CMD`.
EXIT_HOOKS=()
at_exit() { EXIT_HOOKS+=("$1"); }
on_exit() {
    local hook
    for hook in "${EXIT_HOOKS[@]}"; do eval "$hook" || true; done
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap on_exit EXIT

OUTBOX_TMP=
if [[ -n ${BENCH_OUTBOX_DIR:-} ]]; then
    OUTBOX_TMP=$(mktemp -d "$BENCH_OUTBOX_DIR/outreach-outbox.XXXXXX")
    at_exit 'rm -rf "$OUTBOX_TMP"'
fi
# outbox_of DIR: where the outboxes of the send whose state is under DIR go.
outbox_of() {
    if [[ -n $OUTBOX_TMP ]]; then echo "$OUTBOX_TMP/$(basename "$1")"; else echo "$1/outbox"; fi
}

source "$ROOT/bench/binary.sh"
say "generating $N contacts"
python3 bench/gen-contacts.py "$TMP/contacts.csv" -n "$N" --seed "$SEED" >/dev/null

# send_sets DIR [STATE_URL]: sets `sets`, the --set flags of a send whose state directory and
# outboxes are under DIR, its ledger in STATE_URL's database when given (else SQLite in DIR/state).
send_sets() {
    local dir=$1 url=${2:-} outbox
    outbox=$(outbox_of "$dir")
    sets=(--set "contacts.path=$TMP/contacts.csv" --set "contacts.suppress=[]" --set "campaign.require_approval=false"
          --set "sending.state_dir=$dir/state" --set "email.outbox=$outbox/email"
          --set "sms.outbox=$outbox/sms.jsonl" --set "sending.email_rate=0" --set "sending.sms_rate=0")
    [[ -z $url ]] || sets+=(--set "sending.state_url=\"$url\"")
}

# run NAME ARGS...: runs outreach under /usr/bin/time; leaves NAME.json and NAME.time (wall s,
# peak RSS KiB, user s, system s); NAME.wall and NAME.rss as well.
run() {
    local name=$1; shift
    /usr/bin/time -f '%e %M %U %S' -o "$TMP/$name.time" "$BIN" "$@" --format json >"$TMP/$name.json"
    read -r wall rss _ <"$TMP/$name.time"
    echo "$wall" >"$TMP/$name.wall"; echo "$rss" >"$TMP/$name.rss"
}
# field NAME KEY: KEY (due, sent, ...) summed over the channels of NAME's JSON summary.
field() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print(sum(c[sys.argv[2]] for c in v['channels']))" "$TMP/$1.json" "$2"; }

# verify FIRST RERUN DIR: FIRST sent every due message, its outboxes hold exactly that many,
# and RERUN (over the completed campaign) sent none. Prints the number sent.
verify() {
    local first=$1 rerun=$2 outbox due sent again files lines
    outbox=$(outbox_of "$3")
    due=$(field "$first" due); sent=$(field "$first" sent); again=$(field "$rerun" sent)
    files=$(find "$outbox/email" -name '*.eml' | wc -l); lines=$(wc -l <"$outbox/sms.jsonl")
    [[ $sent == "$due" ]] || { say "FAIL ($first): $sent sent of $due due"; exit 1; }
    [[ $((files + lines)) == "$sent" ]] || { say "FAIL ($first): outbox holds $((files + lines)), ledger says $sent"; exit 1; }
    [[ $again == 0 ]] || { say "FAIL ($rerun): the rerun sent $again"; exit 1; }
    say "verified ($first): $sent messages sent ($files emails, $lines SMS), each once; the rerun sent none"
    echo "$sent"
}
