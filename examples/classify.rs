//! Prints how `outreach::bounce::classify` reads each message file given on the command line:
//! `cargo run --example classify -- FILE…` (a tool for growing the corpus in tests/bounces).

fn main() {
    let mailto = ["unsubscribe@riverside.example".to_string()];
    let ctx = outreach::bounce::Context {
        bounce_pattern: Some("bounces+{{token}}@riverside.example"),
        unsubscribe_mailto: &mailto,
    };
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(raw) => println!("{path}: {:#?}", outreach::bounce::classify(&raw, &ctx)),
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
