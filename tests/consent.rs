//! Consent evidence: the consent each contact gave (`yes`, or the date it was given) and how
//! (`consent_source`, or a usual spelling of it) are kept in the ledger with each message when
//! it is claimed, and shown in the report, so the clinic can show when and how each patient
//! agreed to each message it sent.

use crate::common::{self, Fixture, HEADER};

#[test]
fn each_message_keeps_the_consent_it_was_sent_under() {
    let f = Fixture::new(&format!(
        "{HEADER},Opt-in Source\n\
         P1,Ann,Lee,ann@example.com,(312) 555-0101,,2025-03-14,yes,,intake form 2025\n\
         P2,Bo,Ng,bo@example.com,(312) 555-0102,,yes,2026-01-02T10:00:00,,front desk call\n\
         P3,Cy,Ox,cy@example.com,,,Y,,,\n"
    ));
    let extra = "[sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\n";
    f.write("campaign.toml", &common::campaign_toml(extra));
    let (code, out, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = f.run(&["report", "campaign.toml", "--out", "r.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    let report = f.read("r.csv");
    let header: Vec<&str> = report.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (consent, source) = (col("consent"), col("consent_source"));
    let mut rows: Vec<String> = report
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            format!(
                "{} {}: {} / {}",
                cells[2], cells[1], cells[consent], cells[source]
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            "P1 email: 2025-03-14 / intake form 2025",
            "P1 sms: yes / intake form 2025",
            "P2 email: yes / front desk call",
            "P2 sms: 2026-01-02 / front desk call",
            "P3 email: yes / ",
            "P3 sms:  / ",
        ],
        "{report}"
    );
}
