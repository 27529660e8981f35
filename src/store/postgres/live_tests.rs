//! `postgres.rs` against a throwaway PostgreSQL 15 ([`Cluster`]): arguments and the types the
//! server infers, statements prepared again after a schema change, rows read while another
//! statement waits, a Unix socket, a caller inside a tokio runtime, a server stopped
//! mid-session, TLS modes, passwords, and the store's schema and leases on it.

use super::test_cluster::{Cluster, Options, one_int, parsed};
use super::*;

#[test]
fn arguments_of_each_kind_are_stored_and_read_back_by_the_column_type() {
    let cluster = Cluster::start(&Options::default());
    let pg = cluster.connect("sslmode=disable");
    pg.batch_execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, i4 INTEGER, i2 SMALLINT, b BOOLEAN, \
         f8 DOUBLE PRECISION, f4 REAL, s TEXT, v VARCHAR(20), c CHAR(3), n BIGINT); \
         CREATE TABLE u (x INTEGER)",
    )
    .unwrap();
    let insert = "INSERT INTO t (id, i4, i2, b, f8, f4, s, v, c, n) \
                  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    let args = [
        Arg::Int(9_007_199_254_740_993),
        Arg::Int(-2_000_000_000),
        Arg::Int(-300),
        Arg::Int(1),
        Arg::Real(0.1),
        Arg::Real(1.5),
        Arg::Text("été ?1 'quoted'"),
        Arg::Int(42),
        Arg::Text("ab"),
        Arg::Null,
    ];
    assert_eq!(pg.execute(insert, &args).unwrap(), 1);
    let mut second = args;
    second[0] = Arg::Int(2);
    second[3] = Arg::Int(0);
    second[5] = Arg::Int(7);
    second[6] = Arg::Null;
    assert_eq!(pg.execute(insert, &second).unwrap(), 1);

    let row = pg
        .query_opt(
            "SELECT * FROM t WHERE id = ?1",
            &[Arg::Int(9_007_199_254_740_993)],
        )
        .unwrap()
        .unwrap();
    assert_eq!(int(&row, 0).unwrap(), Some(9_007_199_254_740_993));
    assert_eq!(int(&row, 1).unwrap(), Some(-2_000_000_000));
    assert_eq!(int(&row, 2).unwrap(), Some(-300));
    assert_eq!(int(&row, 3).unwrap(), Some(1));
    assert_eq!(boolean(&row, 3).unwrap(), Some(true));
    assert_eq!(real(&row, 4).unwrap(), Some(0.1));
    assert_eq!(real(&row, 5).unwrap(), Some(1.5));
    assert_eq!(text(&row, 6).unwrap().as_deref(), Some("été ?1 'quoted'"));
    assert_eq!(text(&row, 7).unwrap().as_deref(), Some("42"));
    assert_eq!(text(&row, 8).unwrap().as_deref(), Some("ab "));
    assert_eq!(int(&row, 9).unwrap(), None);
    assert_eq!(
        text(&row, 9).unwrap_err(),
        "`n` is INT8 in PostgreSQL, not text"
    );
    assert_eq!(real(&row, 0).unwrap(), Some(9_007_199_254_740_992.0));
    assert_eq!(boolean(&row, 1).unwrap(), Some(true));
    assert!(
        int(&row, 10)
            .unwrap_err()
            .contains("has 10 columns, not 11")
    );

    let row = pg
        .query_opt("SELECT b, f4, s, i4 FROM t WHERE id = ?1", &[Arg::Int(2)])
        .unwrap()
        .unwrap();
    assert_eq!(boolean(&row, 0).unwrap(), Some(false));
    assert_eq!(real(&row, 1).unwrap(), Some(7.0));
    assert_eq!(text(&row, 2).unwrap(), None);
    assert_eq!(real(&row, 3).unwrap(), Some(-2_000_000_000.0));

    // Streamed rows, and the first of several.
    let mut ids = Vec::new();
    pg.for_each::<PgError, _>("SELECT id FROM t ORDER BY id", &[], |row| {
        ids.push(int(row, 0).unwrap().unwrap());
        Ok(())
    })
    .unwrap();
    assert_eq!(ids, [2, 9_007_199_254_740_993]);
    assert_eq!(
        one_int(&pg, "SELECT id FROM t ORDER BY id", &[]),
        Ok(Some(2))
    );
    assert!(
        pg.query_opt("SELECT id FROM t WHERE id < 0", &[])
            .unwrap()
            .is_none()
    );
    assert_eq!(
        pg.execute("UPDATE t SET n = ?1", &[Arg::Int(5)]).unwrap(),
        2
    );
    assert_eq!(
        pg.execute("INSERT INTO u VALUES (?1)", &[Arg::Null])
            .unwrap(),
        1
    );
}

#[test]
fn the_types_postgresql_infers_for_placeholders_and_results() {
    let cluster = Cluster::start(&Options::default());
    let pg = cluster.connect("sslmode=disable");
    pg.batch_execute(
        "CREATE TABLE t (big BIGINT, small INTEGER, flag BOOLEAN, s TEXT, x REAL); \
         INSERT INTO t VALUES (3000000000, 2, true, 'a', 1.5), (4, 5, false, 'b', 2)",
    )
    .unwrap();
    // A placeholder alone in a SELECT list is TEXT: an integer arrives as its digits.
    let row = pg.query_opt("SELECT ?1", &[Arg::Int(7)]).unwrap().unwrap();
    assert_eq!(text(&row, 0).unwrap().as_deref(), Some("7"));
    assert!(int(&row, 0).unwrap_err().contains("is TEXT"));
    assert_eq!(
        one_int(&pg, "SELECT CAST(?1 AS BIGINT)", &[Arg::Int(7)]),
        Ok(Some(7))
    );
    // `?1 + 1` and an INTEGER column type the placeholder INT4: a larger value is refused.
    assert_eq!(one_int(&pg, "SELECT ?1 + 1", &[Arg::Int(7)]), Ok(Some(8)));
    let e = one_int(&pg, "SELECT ?1 + 1", &[Arg::Int(3_000_000_000)]).unwrap_err();
    assert!(e.contains("does not fit the INTEGER (INT4)"), "{e}");
    let e = pg
        .execute("UPDATE t SET small = ?1", &[Arg::Int(1 << 40)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("CAST it AS BIGINT"), "{e}");
    // Comparing with a BOOLEAN column: 0/1 become false/true.
    assert_eq!(
        one_int(
            &pg,
            "SELECT COUNT(*) FROM t WHERE flag = ?1",
            &[Arg::Int(1)]
        ),
        Ok(Some(1))
    );
    assert_eq!(
        one_int(&pg, "SELECT small FROM t WHERE x = ?1", &[Arg::Int(2)]),
        Ok(Some(5))
    );
    assert_eq!(
        one_int(&pg, "SELECT small FROM t WHERE x = ?1", &[Arg::Real(1.5)]),
        Ok(Some(2))
    );
    // Text for a number's place, and a number for text's, are errors naming the type.
    let e = pg
        .execute("UPDATE t SET big = ?1", &[Arg::Text("5")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("text for a parameter PostgreSQL typed as INT8"),
        "{e}"
    );
    let e = pg
        .execute("UPDATE t SET s = ?1", &[Arg::Real(1.5)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a real number for a parameter PostgreSQL typed as TEXT"),
        "{e}"
    );
    assert_eq!(
        pg.execute("UPDATE t SET s = ?1 WHERE big = 4", &[Arg::Int(9)])
            .unwrap(),
        1
    );
    // SUM of BIGINT is NUMERIC: cast back; COUNT is BIGINT; CASE of 1/0 is INTEGER.
    let e = one_int(&pg, "SELECT SUM(big) FROM t", &[]).unwrap_err();
    assert!(
        e.contains("NUMERIC") && e.contains("CAST it AS BIGINT"),
        "{e}"
    );
    assert_eq!(
        one_int(&pg, "SELECT CAST(SUM(big) AS BIGINT) FROM t", &[]),
        Ok(Some(3_000_000_004))
    );
    assert_eq!(one_int(&pg, "SELECT SUM(small) FROM t", &[]), Ok(Some(7)));
    assert_eq!(
        one_int(
            &pg,
            "SELECT CASE WHEN flag THEN 1 ELSE 0 END FROM t ORDER BY big",
            &[]
        ),
        Ok(Some(0))
    );
    assert_eq!(
        one_int(&pg, "SELECT COUNT(*) FILTER (WHERE flag) FROM t", &[]),
        Ok(Some(1))
    );
    let row = pg
        .query_opt("SELECT AVG(small) FROM t", &[])
        .unwrap()
        .unwrap();
    assert!(real(&row, 0).unwrap_err().contains("DOUBLE PRECISION"));
    // NULL fits any type; a placeholder with no type to infer is PostgreSQL's error.
    assert_eq!(
        one_int(&pg, "SELECT COALESCE(?1, 3)", &[Arg::Null]),
        Ok(Some(3))
    );
    // …and a placeholder's first place decides its type: `?1 IS NULL` first says nothing.
    let (null_first, null_last) = (
        "SELECT COUNT(*) FROM t WHERE ?1 IS NULL OR big = ?1",
        "SELECT COUNT(*) FROM t WHERE big = ?1 OR ?1 IS NULL",
    );
    assert_eq!(one_int(&pg, null_last, &[Arg::Null]), Ok(Some(2)));
    let e = one_int(&pg, null_first, &[Arg::Null]).unwrap_err();
    assert!(
        e.contains("could not determine data type of parameter $1"),
        "{e}"
    );
    let e = pg
        .execute("SELECT 1 WHERE ?1 IS NULL", &[Arg::Null])
        .unwrap_err();
    assert_eq!(e.code(), Some("42P18"), "{e}");
    assert!(!e.is_connection_lost());
    assert_eq!(
        one_int(&pg, "SELECT 1 LIMIT ?1", &[Arg::Int(1)]),
        Ok(Some(1))
    );
}

#[test]
fn a_statement_kept_from_before_a_schema_change_is_prepared_again() {
    let cluster = Cluster::start(&Options::default());
    let pg = cluster.connect("");
    pg.batch_execute("CREATE TABLE t (a BIGINT); INSERT INTO t VALUES (1)")
        .unwrap();
    let columns = |pg: &Pg| pg.query_opt("SELECT * FROM t", &[]).unwrap().unwrap().len();
    assert_eq!(columns(&pg), 1);
    pg.batch_execute("ALTER TABLE t ADD COLUMN b TEXT").unwrap();
    assert_eq!(columns(&pg), 2);
    pg.batch_execute("ALTER TABLE t ADD COLUMN c TEXT").unwrap();
    let mut seen = 0;
    pg.for_each::<PgError, _>("SELECT * FROM t", &[], |row| {
        seen = row.len();
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 3);
    assert_eq!(pg.statements.borrow().len(), 1);
    // A statement's own error is not a lost connection, and the connection goes on.
    let e = pg.execute("SELEC 1", &[]).unwrap_err();
    assert_eq!(e.code(), Some("42601"));
    assert!(!e.is_connection_lost(), "{e}");
    assert!(e.to_string().contains("ERROR 42601: syntax error"), "{e}");
    assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
}

#[test]
fn a_statement_sent_while_rows_are_read_is_refused_instead_of_waiting_forever() {
    let cluster = Cluster::start(&Options::default());
    let pg = cluster.connect("");
    let mut refused = None;
    pg.for_each::<PgError, _>("SELECT * FROM generate_series(1, 3)", &[], |_| {
        refused = Some(pg.execute("SELECT 1", &[]).unwrap_err());
        Ok(())
    })
    .unwrap();
    let e = refused.unwrap();
    assert!(e.to_string().contains("still being read"), "{e}");
    // An error of the callback ends the reading, and the connection is usable again.
    let stopped: Result<(), PgError> =
        pg.for_each("SELECT * FROM generate_series(1, 100000)", &[], |_| {
            Err(PgError::new(pg.target(), ErrorKind::Busy))
        });
    assert!(stopped.is_err());
    assert_eq!(one_int(&pg, "SELECT 2", &[]), Ok(Some(2)));
}

#[test]
fn a_unix_socket_directory_is_reached_in_clear_text() {
    let cluster = Cluster::start(&Options::default());
    let url = format!(
        "postgres://postgres@/postgres?host={}&port={}",
        cluster.dir.path().display(),
        cluster.port
    );
    let pg = Pg::connect(&parsed(&url), None).unwrap();
    assert_eq!(
        one_int(
            &pg,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE client_port = -1 AND pid = pg_backend_pid()",
            &[]
        ),
        Ok(Some(1)),
    );
}

fn sql_from_runtime(pg: &Pg) {
    pg.batch_execute("CREATE TABLE IF NOT EXISTS r (x BIGINT)")
        .unwrap();
    for x in 0..200 {
        pg.execute("INSERT INTO r VALUES (?1)", &[Arg::Int(x)])
            .unwrap();
    }
    let mut n = 0;
    pg.for_each::<PgError, _>("SELECT x FROM r", &[], |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert!(n >= 200);
}

#[test]
fn it_works_from_inside_a_tokio_runtime_of_either_flavour() {
    let cluster = Cluster::start(&Options::default());
    let target = parsed(&cluster.url("127.0.0.1", ""));
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current.block_on(async {
        let pg = Pg::connect(&target, None).unwrap();
        sql_from_runtime(&pg);
        // Many connections from one task: no budget of the caller's runtime is spent.
        for _ in 0..150 {
            drop(Pg::connect(&target, None).unwrap());
        }
    });
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let on_worker = target.clone();
    multi
        .block_on(async move {
            tokio::spawn(async move {
                let pg = Pg::connect(&on_worker, None).unwrap();
                sql_from_runtime(&pg);
                pg
            })
            .await
        })
        .map(|pg| sql_from_runtime(&pg))
        .unwrap();
    // And a connection made on a plain thread, used on another.
    let pg = Pg::connect(&target, None).unwrap();
    std::thread::spawn(move || sql_from_runtime(&pg))
        .join()
        .unwrap();
}

#[test]
fn a_server_stopped_mid_session_is_a_lost_connection() {
    let cluster = Cluster::start(&Options::default());
    // A session ended by the server (an administrator's pg_terminate_backend): its last
    // words are in the error.
    let (doomed, admin) = (cluster.connect(""), cluster.connect(""));
    let pid = one_int(&doomed, "SELECT pg_backend_pid()", &[]).unwrap();
    let terminate = "SELECT CASE WHEN pg_terminate_backend(CAST(?1 AS INTEGER)) THEN 1 END";
    assert_eq!(
        one_int(&admin, terminate, &[Arg::Int(pid.unwrap())]),
        Ok(Some(1))
    );
    let e = doomed.execute("SELECT 1", &[]).unwrap_err();
    assert!(e.is_connection_lost(), "{e}");
    assert!(e.to_string().contains("57P01"), "{e}");
    // The server itself stopped.
    let pg = cluster.connect("");
    assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
    cluster.stop();
    let e = pg.execute("SELECT 1", &[]).unwrap_err();
    assert!(e.is_connection_lost(), "{e}");
    let e = pg.execute("SELECT 2", &[]).unwrap_err();
    assert!(e.is_connection_lost(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("127.0.0.1:{}", cluster.port)),
        "{e}"
    );
    let again = Pg::connect(pg.target(), None).unwrap_err();
    assert!(again.is_connection_lost(), "{again}");
}

#[test]
fn tls_modes_check_what_libpq_checks_and_never_fall_back_to_clear_text() {
    let cluster = Cluster::start(&Options {
        tls: true,
        ..Options::default()
    });
    let (ca, other_ca) = (cluster.tls_file("ca.crt"), cluster.tls_file("other-ca.crt"));
    let try_connect =
        |host: &str, query: &str| Pg::connect(&parsed(&cluster.url(host, query)), None);
    let encrypted = |pg: &Pg| {
        let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        boolean(&pg.query_opt(sql, &[]).unwrap().unwrap(), 0).unwrap()
    };
    let passes = |host: &str, query: &str| {
        let pg = try_connect(host, query).unwrap_or_else(|e| panic!("{host} {query}: {e}"));
        assert_eq!(encrypted(&pg), Some(true), "{query}");
    };
    let fails = |host: &str, query: &str, why: &str| {
        let e = try_connect(host, query).unwrap_err();
        assert!(e.to_string().contains(why), "{host} {query}: {e}");
        assert!(!e.is_connection_lost(), "{e}");
    };
    // The certificate names 127.0.0.1 only, so `localhost` is the wrong name for it.
    passes(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    fails(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
        "certificate not valid for name",
    );
    passes("localhost", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    passes("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    for mode in ["verify-full", "verify-ca"] {
        fails(
            "127.0.0.1",
            &format!("sslmode={mode}&sslrootcert={other_ca}"),
            "UnknownIssuer",
        );
    }
    // The system's roots do not know the test CA.
    fails("127.0.0.1", "sslmode=verify-full", "UnknownIssuer");
    passes("localhost", "sslmode=require");
    let missing = format!("sslmode=verify-full&sslrootcert={ca}.missing");
    fails("127.0.0.1", &missing, "ca.crt.missing: No such file");
    let pg = try_connect("127.0.0.1", "sslmode=disable").unwrap();
    assert_eq!(encrypted(&pg), Some(false));
}

#[test]
fn require_against_a_server_without_tls_fails_and_disable_connects() {
    let cluster = Cluster::start(&Options::default());
    for mode in ["require", "verify-ca", "verify-full"] {
        let target = parsed(&cluster.url("127.0.0.1", &format!("sslmode={mode}")));
        let e = Pg::connect(&target, None).unwrap_err();
        assert!(e.to_string().contains("server does not support TLS"), "{e}");
        assert!(!e.is_connection_lost(), "{e}");
    }
    let pg = cluster.connect("sslmode=disable");
    assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
}

#[test]
fn a_password_is_given_to_the_server_and_never_shown() {
    let cluster = Cluster::start(&Options {
        password: Some("Corr3ct-h0rse"),
        ..Options::default()
    });
    let target = parsed(&cluster.url("127.0.0.1", ""));
    let pg = Pg::connect(&target, Some("Corr3ct-h0rse")).unwrap();
    assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
    let e = Pg::connect(&target, Some("Wr0ng-h0rse")).unwrap_err();
    assert_eq!(e.code(), Some("28P01"), "{e}");
    assert!(!e.is_connection_lost());
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("password authentication failed"), "{shown}");
    assert!(!shown.contains("h0rse"), "{shown}");
    let e = Pg::connect(&target, None).unwrap_err();
    assert!(e.to_string().contains("password missing"), "{e}");
}

// --- Leases (`store/lease.rs`) on the schema's version 2 -----------------------------

fn ledger_on(pg: Pg) -> crate::store::ledger::Ledger {
    crate::store::ledger::Ledger {
        db: crate::store::db::Db::Postgres(Box::new(pg)),
        path: "postgres-test".into(),
        synchronous: "FULL",
        frequency_cap: None,
        daily_cap: None,
    }
}

/// `store/lookup.rs`'s chunks on PostgreSQL: its parameters' types inferred from an `IN`
/// list, its row ids an identity column.
#[test]
fn chunks_read_what_lookups_by_key_find_on_postgres() {
    let cluster = Cluster::start(&Options::default());
    let db = crate::store::db::Db::Postgres(Box::new(cluster.connect("sslmode=disable")));
    crate::store::postgres_schema::migrate(&db).unwrap();
    let crate::store::db::Db::Postgres(pg) = db else {
        unreachable!()
    };
    crate::store::lookup::tests::chunks_read_what_lookups_by_key_find(&mut ledger_on(*pg));
}

fn one_text(pg: &Pg, sql: &str) -> Option<String> {
    let row = pg.query_opt(sql, &[]).unwrap().expect("a row");
    super::text(&row, 0).unwrap()
}

#[test]
fn a_version_1_store_is_migrated_to_leases_and_a_lapsed_run_is_recovered() {
    use crate::model::{Channel, State};
    use crate::store::claims::fixtures::{claim, outcome};
    use crate::store::ledger::{Claimed, LedgerError};
    let cluster = Cluster::start(&Options::default());
    let pg = cluster.connect("sslmode=disable");
    // A store as the first version left it, with a run that never finished.
    pg.batch_execute(
        "CREATE TABLE outreach_schema (version BIGINT NOT NULL);
         INSERT INTO outreach_schema (version) VALUES (1);",
    )
    .unwrap();
    pg.batch_execute(crate::store::postgres_schema::STEPS[0])
        .unwrap();
    pg.batch_execute(
        "INSERT INTO runs (campaign, pid, started_at) VALUES ('c', 7, '2026-01-01T00:00:00Z')",
    )
    .unwrap();
    let db = crate::store::db::Db::Postgres(Box::new(pg));
    crate::store::postgres_schema::migrate(&db).unwrap();
    let crate::store::db::Db::Postgres(pg) = db else {
        unreachable!()
    };
    assert_eq!(
        one_int(&pg, "SELECT MAX(version) FROM outreach_schema", &[]),
        Ok(Some(3))
    );
    assert_eq!(
        one_text(
            &pg,
            "SELECT COALESCE(host, 'none') || CAST(heartbeat_at AS TEXT) FROM runs"
        ),
        None,
        "the old run has neither"
    );
    let mut l = ledger_on(*pg);
    let admin = cluster.connect("sslmode=disable");
    let now = chrono::Utc::now();
    l.fingerprint_change("c", "fp", now).unwrap();
    // The old run has no lease: recovery marks it lost.
    assert_eq!(l.recover_interrupted("c", now).unwrap(), 0);
    let (a, _) = l.begin_run("c", now).unwrap();
    let (b, _) = l.begin_run("c", now).unwrap();
    let pg = &admin;
    assert_eq!(
        one_text(
            pg,
            "SELECT string_agg(COALESCE(outcome, '-'), ',' ORDER BY id) FROM runs"
        ),
        Some("lost,-,-".into())
    );
    assert_eq!(
        one_int(
            pg,
            "SELECT COUNT(*) FROM runs WHERE host IS NOT NULL AND heartbeat_at > now() - interval '1 minute'",
            &[]
        ),
        Ok(Some(2))
    );
    // Two live runs claim side by side; a's claims are in flight when its lease lapses.
    let granted = |c: &[Claimed]| c.iter().all(|c| c.granted().is_some());
    let claims_a = l
        .commit("c", (a, "fp"), &[], &[claim("x"), claim("y")], now)
        .unwrap();
    let claims_b = l.commit("c", (b, "fp"), &[], &[claim("z")], now).unwrap();
    assert!(granted(&claims_a) && granted(&claims_b));
    l.commit("c", (a, "fp"), &[outcome("x", State::Sent)], &[], now)
        .unwrap();
    assert_eq!(l.recover_interrupted("c", now).unwrap(), 0, "both are live");
    assert_eq!(l.live_runs("c").unwrap(), 2);
    let rank = |r| l.live_runs_before("c", r).unwrap();
    assert_eq!((rank(a), rank(b)), (0, 1), "b began after a");
    pg.execute(
        "UPDATE runs SET heartbeat_at = now() - interval '1 hour' WHERE id = ?1",
        &[Arg::Int(a)],
    )
    .unwrap();
    assert!(matches!(
        l.commit("c", (a, "fp"), &[], &[claim("w")], now),
        Err(LedgerError::LeaseLost { .. })
    ));
    assert_eq!(l.recover_interrupted("c", now).unwrap(), 1, "a's y only");
    assert_eq!(l.live_runs("c").unwrap(), 1);
    assert!(!l.heartbeat(a).unwrap(), "a is lost: it must stop");
    assert!(l.heartbeat(b).unwrap());
    let priors = l.priors("c").unwrap();
    let state = |addr| priors.get(Channel::Email, addr).map(|p| p.state);
    assert_eq!(
        [state("x"), state("y"), state("z"), state("w")],
        [
            Some(State::Sent),
            Some(State::Unknown),
            Some(State::Sending),
            None
        ]
    );
    let pg = &admin;
    assert_eq!(
        one_text(
            pg,
            "SELECT string_agg(COALESCE(outcome, '-'), ',' ORDER BY id) FROM runs"
        ),
        Some("lost,lost,-".into())
    );
    // b's plan did not see y unknown: b may not take it over (it may have gone); a run
    // that resends unknown messages may.
    let y = claim("y");
    assert_eq!(
        l.commit("c", (b, "fp"), &[], std::slice::from_ref(&y), now)
            .unwrap(),
        [Claimed::Refused]
    );
    let resumed = crate::store::ledger::Claim {
        resumes_unknown: true,
        ..y
    };
    let claimed = l.commit("c", (b, "fp"), &[], &[resumed], now).unwrap();
    assert!(granted(&claimed));
    // The pace: a block of slots a period apart, the next block after it, whoever asks.
    let ms = std::time::Duration::from_millis;
    let first = l.reserve_slots("c", "sms", ms(100), 3).unwrap();
    let second = l.reserve_slots("c", "sms", ms(100), 2).unwrap();
    assert!(
        first[0] < ms(50) && first[2] > ms(150) && first[2] < ms(250),
        "{first:?}"
    );
    assert!(second[0] > ms(250) && second[1] < ms(450), "{second:?}");
}
