# Sourced by bench/send.sh and bench/smtp.sh (after `say` and ROOT are defined): sets BIN to
# OUTREACH_BIN when given (a binary built elsewhere, for an A/B comparison of two builds), else
# builds this tree in release and uses that (in CARGO_TARGET_DIR when set).
if [[ -n ${OUTREACH_BIN:-} ]]; then
    BIN=$OUTREACH_BIN
else
    say "building (release)"
    cargo build --release --quiet
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/outreach"
fi
