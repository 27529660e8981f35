//! The campaign report as one HTML file: inline CSS, inline SVG charts ([`crate::chart`]), no
//! script, no request of any kind (its Content-Security-Policy allows none), so it opens from
//! disk, can be mailed to a practice owner, and prints on A4 or Letter (`@media print`: no
//! section split across pages). It holds aggregate counts only, and says so in its footer.

use std::fmt::Write;

use crate::chart::{self, Series, Stage, escape, share};
use crate::config::Price;
use crate::model::Channel;

use super::figures::{Figures, Period, SKIPS, duration, local_time};

/// The footer every report carries.
pub const FOOTER: &str = "Aggregate counts only: no names, addresses or ids; safe to share.";

/// The policy in every report's `<meta>`: nothing may load, only its own inline styles apply.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = "
:root { --ink: #1d2733; --muted: #5b6876; --line: #d5dbe1; --email: #2f6db5; --sms: #2b8a5e;
        --sent: #2f6db5; --delivered: #2b8a5e; --failed: #c0392b; --optout: #b7791f; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif;
       color: var(--ink); margin: 0 auto; padding: 24px; max-width: 1040px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.card b { display: block; font-size: 22px; } .card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; min-width: 50%; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line);
         vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.cols { display: flex; flex-wrap: wrap; gap: 24px; } .cols > div { flex: 1 1 440px; }
svg { max-width: 100%; height: auto; display: block; }
svg .axis { stroke: #7a8793; } svg .grid { stroke: #e6eaee; }
svg .tick, svg .label, svg .value { font-size: 11px; fill: var(--muted); }
svg .label { fill: var(--ink); }
svg .stage { fill: var(--email); } .sms svg .stage { fill: var(--sms); }
svg .sent { fill: var(--sent); } svg .delivered { fill: var(--delivered); }
svg .failed { fill: var(--failed); } svg .optout { fill: var(--optout); }
svg .email { fill: var(--email); } svg .sms { fill: var(--sms); }
svg .spark { fill: var(--email); }
.key span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; }
.note { color: var(--muted); font-size: 12px; }
footer { margin-top: 32px; border-top: 1px solid var(--line); padding-top: 8px;
         color: var(--muted); font-size: 12px; }
@media print {
  @page { margin: 14mm; }
  body { padding: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; page-break-after: avoid; margin-top: 16px; }
  section, table, svg, .card { break-inside: avoid; page-break-inside: avoid; }
  section.runs, section.over-time { break-before: page; page-break-before: always; }
  .cols > div { flex-basis: 45%; }
  a { color: inherit; text-decoration: none; }
}
";

/// What a campaign's page shows beside its figures.
pub struct Page<'a> {
    pub figures: &'a Figures,
    /// The campaign's name and its clinic's.
    pub name: &'a str,
    pub clinic: &'a str,
    /// When the report was made, clinic time.
    pub generated: String,
    /// The configured window, quiet hours and cap, each a (name, value) line.
    pub window: Vec<(String, String)>,
    pub price: Option<Price>,
    pub currency: &'a str,
}

/// The document's head and opening, with `title`.
pub fn open(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    );
}

/// The footer and the document's end.
pub fn close(out: &mut String) {
    let _ = write!(out, "<footer>{FOOTER}</footer>\n</body></html>\n");
}

/// The channel's name as the page says it.
fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
    }
}

/// The whole page.
pub fn page(p: &Page<'_>) -> String {
    let f = p.figures;
    let mut out = String::new();
    open(&mut out, &format!("{} — campaign report", p.name));
    let _ = writeln!(
        out,
        "<header><h1>{}</h1><p class=\"sub\">{} · campaign <code>{}</code> · report made {}</p></header>",
        escape(p.name),
        escape(p.clinic),
        escape(&f.campaign),
        escape(&p.generated)
    );
    cards(&mut out, p);
    funnels(&mut out, f);
    over_time(&mut out, f);
    failures(&mut out, f);
    cost(&mut out, p);
    runs(&mut out, p);
    close(&mut out);
    out
}

fn cards(out: &mut String, p: &Page<'_>) {
    let f = p.figures;
    out.push_str("<section class=\"cards\">");
    let mut card = |value: String, what: &str| {
        let _ = write!(
            out,
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            escape(what)
        );
    };
    if let Some(plan) = f.plan.values().next() {
        card(plan.contacts.to_string(), "contacts");
    }
    for (c, l) in &f.ledger {
        card(
            l.state("sent").to_string(),
            &format!("{} sent", channel_name(*c)),
        );
    }
    if let Some(sms) = f.ledger.get(&Channel::Sms) {
        card(sms.after("delivered").to_string(), "SMS delivered");
    }
    let opted: u64 = f.ledger.values().map(|l| l.after("opted out")).sum();
    card(opted.to_string(), "opted out");
    if let (Some(price), Some(sms)) = (p.price, f.ledger.get(&Channel::Sms))
        && let Some(cost) = price.times(sms.segments)
    {
        card(format!("{} {}", cost.show(2), p.currency), "SMS cost");
    }
    out.push_str("</section>\n");
}

/// The funnel stages of one channel.
fn stages(f: &Figures, c: Channel) -> Vec<Stage> {
    let l = f.ledger.get(&c).cloned().unwrap_or_default();
    let mut stages = Vec::new();
    let mut stage = |name: &str, count| {
        stages.push(Stage {
            name: name.to_string(),
            count,
        })
    };
    if let Some(plan) = f.plan.get(&c) {
        stage("contacts", plan.contacts);
        stage("chosen", plan.after("chosen"));
        stage("reachable", plan.after("reachable"));
        stage("consented", plan.after("consented"));
        stage("due", plan.after("due"));
    }
    stage("sent", l.state("sent"));
    match c {
        Channel::Sms => stage("delivered", l.after("delivered")),
        // An email's delivery is never known; what did not come back is what can be said.
        Channel::Email => stage(
            "not returned",
            l.state("sent")
                .saturating_sub(l.after("bounced") + l.after("undelivered")),
        ),
    }
    stages
}

fn funnels(out: &mut String, f: &Figures) {
    out.push_str("<section class=\"funnel\"><h2>Funnel</h2><div class=\"cols\">\n");
    for c in f.ledger.keys() {
        let name = channel_name(*c);
        let stages = stages(f, *c);
        let first = stages.first().map_or(0, |s| s.count);
        let _ = write!(out, "<div class=\"{}\"><h3>{name}</h3>", c.as_str());
        chart::write_into(
            out,
            &chart::funnel(&format!("{name} funnel"), c.as_str(), &stages),
        );
        out.push_str(
            "<table><tr><th></th><th class=\"n\">count</th><th class=\"n\">share</th></tr>",
        );
        let mut row = |what: &str, n: u64| {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{n}</td><td class=\"n\">{}</td></tr>",
                escape(what),
                share(n, first)
            );
        };
        if let Some(plan) = f.plan.get(c) {
            for (label, _) in SKIPS {
                let n = plan.skipped.get(label).copied().unwrap_or(0);
                if n > 0 {
                    row(&format!("skipped: {}", label.replace('_', " ")), n);
                }
            }
            row("deferred (a later run)", plan.deferred);
            row("due now (not yet sent)", plan.due_now);
        }
        let l = f.ledger.get(c).cloned().unwrap_or_default();
        row("failed", l.state("failed"));
        row("failed, will retry", l.state("retry"));
        row("unknown (run interrupted)", l.state("unknown"));
        let after: &[&str] = match c {
            Channel::Sms => &["delivered", "undelivered", "opted out"],
            Channel::Email => &[
                "bounced",
                "soft-bounced",
                "undelivered",
                "complained",
                "opted out",
            ],
        };
        for w in after {
            row(w, l.after(w));
        }
        out.push_str("</table></div>\n");
    }
    out.push_str(
        "</div><p class=\"note\">Shares are of the channel's first stage. No opens or clicks are \
         tracked: no pixel, no redirect.</p></section>\n",
    );
}

fn over_time(out: &mut String, f: &Figures) {
    let unit = if f.hourly { "hour" } else { "day" };
    let _ = write!(
        out,
        "<section class=\"over-time\"><h2>Over time, per {unit} ({})</h2>",
        escape(f.timezone.name())
    );
    if f.periods.is_empty() {
        out.push_str("<p>Nothing sent yet.</p></section>\n");
        return;
    }
    let categories: Vec<String> = f.periods.keys().cloned().collect();
    let values = |c: Channel, get: fn(&Period) -> u64| -> Vec<u64> {
        f.periods
            .values()
            .map(|m| m.get(&c).map_or(0, get))
            .collect()
    };
    out.push_str(
        "<p class=\"key\"><span style=\"background:#2f6db5\"></span>sent\
         <span style=\"background:#2b8a5e\"></span>delivered\
         <span style=\"background:#c0392b\"></span>failed</p>",
    );
    for c in f.ledger.keys() {
        let name = channel_name(*c);
        let mut series = vec![Series {
            name: format!("{} sent", c.as_str()),
            class: "sent",
            values: values(*c, |p| p.sent),
        }];
        if *c == Channel::Sms {
            series.push(Series {
                name: "sms delivered".into(),
                class: "delivered",
                values: values(*c, |p| p.delivered),
            });
        }
        series.push(Series {
            name: format!("{} failed", c.as_str()),
            class: "failed",
            values: values(*c, |p| p.failed),
        });
        let _ = write!(out, "<h3>{name}</h3>");
        chart::write_into(
            out,
            &chart::bars(&format!("{name} per {unit}"), &categories, &series),
        );
    }
    out.push_str("<h3>Opt-outs</h3>");
    let series: Vec<Series> = f
        .ledger
        .keys()
        .map(|c| Series {
            name: format!("{} opted out", c.as_str()),
            class: c.as_str(),
            values: values(*c, |p| p.opted_out),
        })
        .collect();
    chart::write_into(
        out,
        &chart::bars(&format!("Opt-outs per {unit}"), &categories, &series),
    );
    out.push_str("</section>\n");
}

fn failures(out: &mut String, f: &Figures) {
    out.push_str("<section class=\"failures\"><h2>Failures, top 10</h2>");
    if f.failures.is_empty() {
        out.push_str("<p>None recorded.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><tr><th>channel</th><th>what</th><th>code</th><th>receiving domain</th>\
         <th class=\"n\">messages</th></tr>",
    );
    for x in &f.failures {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            channel_name(x.channel),
            escape(x.reason),
            escape(&x.code),
            escape(&x.domain),
            x.count
        );
    }
    out.push_str(
        "</table><p class=\"note\">Grouped by code and receiving domain; no address is listed.</p>\
         </section>\n",
    );
}

fn cost(out: &mut String, p: &Page<'_>) {
    let Some(sms) = p.figures.ledger.get(&Channel::Sms) else {
        return;
    };
    out.push_str("<section class=\"cost\"><h2>SMS cost</h2><table>");
    let sent = sms.state("sent");
    let _ = write!(
        out,
        "<tr><td>SMS sent</td><td class=\"n\">{sent}</td></tr>\
         <tr><td>segments (as sent)</td><td class=\"n\">{}</td></tr>",
        sms.segments
    );
    match p.price {
        Some(price) => {
            let cost = price.times(sms.segments).unwrap_or(Price(u64::MAX));
            let _ = write!(
                out,
                "<tr><td>price per segment</td><td class=\"n\">{} {cur}</td></tr>\
                 <tr><td><b>cost</b></td><td class=\"n\"><b>{} {cur}</b></td></tr>",
                price.show(6).trim_end_matches('0').trim_end_matches('.'),
                cost.show(2),
                cur = escape(p.currency)
            );
        }
        None => out.push_str(
            "<tr><td colspan=\"2\" class=\"note\">Set <code>report.sms_price_per_segment</code> \
             in the campaign file to see the cost.</td></tr>",
        ),
    }
    out.push_str("</table>");
    let unknown = sent.saturating_sub(sms.with_segments);
    if unknown > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{unknown} SMS were recorded sent without their segments (sent \
             by an earlier version, or settled by <code>sync</code>): not in the cost.</p>"
        );
    }
    out.push_str("</section>\n");
}

fn runs(out: &mut String, p: &Page<'_>) {
    let f = p.figures;
    out.push_str("<section class=\"runs\"><h2>Approval, window and runs</h2><table>");
    let tz = f.timezone;
    match &f.approval {
        Some((by, at)) => {
            let _ = write!(
                out,
                "<tr><td>approved by</td><td>{}</td></tr><tr><td>approved at</td><td>{}</td></tr>",
                escape(by),
                escape(&local_time(at, tz))
            );
        }
        None => out.push_str("<tr><td>approval</td><td>none recorded</td></tr>"),
    }
    for (k, v) in &p.window {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
    }
    out.push_str("</table>");
    if f.runs.is_empty() {
        out.push_str("<p>No run yet.</p></section>\n");
        return;
    }
    let categories: Vec<String> = f
        .runs
        .iter()
        .map(|r| format!("run {}", r.line.number))
        .collect();
    out.push_str(
        "<h3>Messages per run</h3><p class=\"key\"><span style=\"background:#2f6db5\"></span>email\
         <span style=\"background:#2b8a5e\"></span>SMS</p>",
    );
    chart::write_into(
        out,
        &chart::bars(
            "Messages sent per run",
            &categories,
            &[
                Series {
                    name: "emails sent".into(),
                    class: "email",
                    values: f.runs.iter().map(|r| r.email_sent).collect(),
                },
                Series {
                    name: "SMS sent".into(),
                    class: "sms",
                    values: f.runs.iter().map(|r| r.sms_sent).collect(),
                },
            ],
        ),
    );
    out.push_str(
        "<table><tr><th>run</th><th>started</th><th>duration</th><th>outcome</th>\
         <th class=\"n\">emails</th><th class=\"n\">SMS</th></tr>",
    );
    for r in &f.runs {
        let l = &r.line;
        let took = l
            .finished_at
            .as_deref()
            .and_then(|end| duration(&l.started_at, end))
            .unwrap_or_else(|| "–".into());
        let outcome = l
            .outcome
            .as_deref()
            .unwrap_or("not finished (running, or it died)");
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            l.number,
            escape(&local_time(&l.started_at, tz)),
            escape(&took),
            escape(outcome),
            r.email_sent,
            r.sms_sent
        );
    }
    out.push_str("</table></section>\n");
}
