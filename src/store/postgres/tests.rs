//! `postgres.rs` without a server: the URL reaching the client's configuration, `?n` turned into
//! `$n`, and a server that never answers or is not there being a lost connection.

use super::test_cluster::{free_port, parsed};
use super::*;

#[test]
fn the_url_reaches_the_client_configuration() {
    let t =
        parsed("postgres://o%40x@db.example/my%20db?connect_timeout=3&application_name=ward%207");
    let c = client_config(&t, Some("pw"));
    assert_eq!(c.get_user(), Some("o@x"));
    assert_eq!(c.get_dbname(), Some("my db"));
    assert_eq!(c.get_application_name(), Some("ward 7"));
    assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
    assert_eq!(c.get_password(), Some(&b"pw"[..]));
    assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    assert_eq!(c.get_ports(), &[5432]);
    let c = client_config(&parsed("postgres://u@localhost/d"), None);
    assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    assert_eq!(c.get_password(), None);
    assert_eq!(c.get_application_name(), Some("outreach"));
    let c = client_config(&parsed("postgres://u@/d?host=/run/postgresql"), None);
    assert!(matches!(
        c.get_hosts(),
        [tokio_postgres::config::Host::Unix(p)] if p == std::path::Path::new("/run/postgresql")
    ));
}

#[test]
fn placeholders_are_numbered_the_postgresql_way_outside_strings_and_comments() {
    let t = |sql: &str| dollar_placeholders(sql).unwrap();
    assert_eq!(t("SELECT 1"), "SELECT 1");
    assert_eq!(
        t("UPDATE m SET a = ?1, b = ?12 WHERE c = ?3"),
        "UPDATE m SET a = $1, b = $12 WHERE c = $3"
    );
    assert_eq!(t("SELECT ?1||?2"), "SELECT $1||$2");
    assert_eq!(t("SELECT '?1', ?2"), "SELECT '?1', $2");
    assert_eq!(t("SELECT 'it''s ?1', ?2"), "SELECT 'it''s ?1', $2");
    assert_eq!(
        t("SELECT \"a?1\" FROM t WHERE x = ?1"),
        "SELECT \"a?1\" FROM t WHERE x = $1"
    );
    assert_eq!(
        t("SELECT ?1 -- is it ?2?\n, ?3"),
        "SELECT $1 -- is it ?2?\n, $3"
    );
    assert_eq!(t("SELECT 1 -- ?"), "SELECT 1 -- ?");
    assert_eq!(
        t("SELECT /* ?1 /* ?2 */ ?3 */ ?4"),
        "SELECT /* ?1 /* ?2 */ ?3 */ $4"
    );
    assert_eq!(t("SELECT 'é?1', ?1 -- ünï ?"), "SELECT 'é?1', $1 -- ünï ?");
    assert_eq!(t("SELECT 5-?1"), "SELECT 5-$1");
    assert_eq!(t("SELECT 'unterminated ?1"), "SELECT 'unterminated ?1");
    assert!(
        dollar_placeholders("SELECT ? ")
            .unwrap_err()
            .contains("unnumbered")
    );
    assert!(dollar_placeholders("SELECT ?1, ?").is_err());
}

#[test]
fn a_connection_that_is_never_answered_times_out_as_lost() {
    // The kernel completes the TCP handshake for the backlog; nobody ever speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let target = parsed(&format!(
        "postgres://u@127.0.0.1:{port}/d?connect_timeout=1"
    ));
    let started = std::time::Instant::now();
    let e = Pg::connect(&target, Some("Sw0rdfish")).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(e.is_connection_lost(), "{e}");
    let shown = e.to_string();
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(!shown.contains("Sw0rdfish"), "{shown}");
}

#[test]
fn nothing_listening_is_a_lost_connection() {
    let port = free_port();
    let target = parsed(&format!("postgres://u@127.0.0.1:{port}/d"));
    let e = Pg::connect(&target, None).unwrap_err();
    assert!(e.is_connection_lost(), "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
}
