//! The SQLite store keeps what it was given, answers history queries as
//! CHATHISTORY needs, and hands each offline message out once.

use natter_store::{
    Account, HistoryQuery, MessageParts, Selector, Seq, SqliteStore, Store, StoredMessage, Write,
};

/// Message `n` is sent at second `n`.
fn seq(n: i64) -> Seq {
    Seq::at(1_000 * n)
}

fn msgid(n: i64) -> String {
    seq(n).msgid().to_string()
}

fn message(n: i64, target: &str) -> StoredMessage {
    StoredMessage::new(
        seq(n),
        MessageParts {
            msgid: Some(&msgid(n)),
            target,
            command: "PRIVMSG",
            source: "alice!a@host",
            account: Some("alice"),
            recipient: target,
            text: &format!("text {n}"),
            client_tags: "",
        },
    )
}

fn store_with(count: i64) -> SqliteStore {
    let mut store = SqliteStore::in_memory().unwrap();
    let batch: Vec<Write> = (1..=count)
        .map(|n| Write::Message {
            message: message(n, "#room"),
            offline_for: Vec::new(),
        })
        .collect();
    store.write(&batch).unwrap();
    store
        .write(&[Write::Message {
            message: message(1000, "#other"),
            offline_for: Vec::new(),
        }])
        .unwrap();
    store
}

fn ids(messages: &[StoredMessage]) -> Vec<String> {
    messages.iter().map(|m| m.msgid().into_owned()).collect()
}

fn names(list: &[i64]) -> Vec<String> {
    list.iter().map(|&n| msgid(n)).collect()
}

#[test]
fn latest_gives_the_newest_messages_oldest_first() {
    let mut s = store_with(10);
    let q = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 3,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[8, 9, 10]));
    let q = HistoryQuery::Latest {
        after: Selector::Msgid(msgid(8)),
        limit: 5,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[9, 10]));
}

#[test]
fn before_and_after_page_by_msgid_and_by_time() {
    let mut s = store_with(10);
    let q = HistoryQuery::Before {
        at: Selector::Msgid(msgid(5)),
        limit: 2,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[3, 4]));
    let q = HistoryQuery::After {
        at: Selector::Time(5_000),
        limit: 2,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[6, 7]));
    let q = HistoryQuery::Before {
        at: Selector::Msgid("no-such-id".into()),
        limit: 2,
    };
    assert!(s.history("#room", &q).unwrap().is_empty());
}

#[test]
fn around_and_between() {
    let mut s = store_with(10);
    let q = HistoryQuery::Around {
        at: Selector::Msgid(msgid(5)),
        limit: 3,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[4, 5, 6]));
    let q = HistoryQuery::Between {
        from: Selector::Msgid(msgid(2)),
        to: Selector::Time(7_000),
        limit: 10,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[3, 4, 5, 6]));
    // Backwards: from the later bound towards the earlier, nearest first.
    let q = HistoryQuery::Between {
        from: Selector::Time(7_000),
        to: Selector::Msgid(msgid(2)),
        limit: 2,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[5, 6]));
}

#[test]
fn offline_messages_are_taken_exactly_once() {
    let mut s = SqliteStore::in_memory().unwrap();
    let key = StoredMessage::direct_key("alice", "bob");
    s.write(&[
        Write::Message {
            message: message(1, &key),
            offline_for: vec!["bob".into()],
        },
        Write::Message {
            message: message(2, &key),
            offline_for: vec!["bob".into()],
        },
    ])
    .unwrap();
    // Writing the same message id again does not queue it twice.
    s.write(&[Write::Message {
        message: message(2, &key),
        offline_for: vec!["bob".into()],
    }])
    .unwrap();
    assert_eq!(ids(&s.take_offline("bob").unwrap()), names(&[1, 2]));
    assert!(s.take_offline("bob").unwrap().is_empty());
    let q = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 10,
    };
    assert_eq!(s.history(&key, &q).unwrap().len(), 2);
}

#[test]
fn accounts_are_created_once_and_managed() {
    let mut s = SqliteStore::in_memory().unwrap();
    let alice = Account {
        name: "alice".into(),
        display_name: "Alice".into(),
        password_hash: "h1".into(),
        created_ms: 1,
    };
    assert!(s.create_account(&alice).unwrap());
    assert!(!s.create_account(&alice).unwrap());
    assert!(s.set_password("alice", "h2").unwrap());
    assert_eq!(s.account("alice").unwrap().unwrap().password_hash, "h2");
    assert!(!s.set_password("nobody", "h").unwrap());
    assert_eq!(s.accounts().unwrap().len(), 1);
    assert!(s.delete_account("alice").unwrap());
    assert!(s.account("alice").unwrap().is_none());
    assert!(!s.delete_account("alice").unwrap());
}

#[test]
fn read_markers_only_move_forward() {
    let mut s = SqliteStore::in_memory().unwrap();
    let mark = |t| Write::ReadMarker {
        account: "alice".into(),
        target: "#room".into(),
        time_ms: t,
    };
    s.write(&[mark(50)]).unwrap();
    s.write(&[mark(20)]).unwrap();
    assert_eq!(s.read_marker("alice", "#room").unwrap(), Some(50));
    assert_eq!(s.read_marker("alice", "#else").unwrap(), None);
}

#[test]
fn what_was_written_survives_reopening_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    {
        let mut s = SqliteStore::open(&path).unwrap();
        s.write(&[Write::Message {
            message: message(1, "#room"),
            offline_for: Vec::new(),
        }])
        .unwrap();
        s.backup_to(&dir.path().join("backup.db")).unwrap();
    }
    let q = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 10,
    };
    let mut reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(ids(&reopened.history("#room", &q).unwrap()), names(&[1]));
    let mut restored = SqliteStore::open(&dir.path().join("backup.db")).unwrap();
    assert_eq!(ids(&restored.history("#room", &q).unwrap()), names(&[1]));
}

#[test]
fn prune_drops_old_messages() {
    let mut s = store_with(10);
    assert_eq!(s.prune(4_000).unwrap(), 3);
    let q = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 100,
    };
    assert_eq!(s.history("#room", &q).unwrap().len(), 7);
}

#[test]
fn a_large_batch_keeps_every_message_once_and_in_order() {
    let mut s = SqliteStore::in_memory().unwrap();
    // Several full multi-row inserts and a remainder, two conversations interleaved,
    // an offline message in the middle, and a repeat that must change nothing.
    let mut batch: Vec<Write> = (1..=150)
        .map(|n| Write::Message {
            message: message(n, if n % 3 == 0 { "#other" } else { "#room" }),
            offline_for: if n == 70 {
                vec!["bob".into()]
            } else {
                Vec::new()
            },
        })
        .collect();
    batch.push(Write::Message {
        message: message(5, "#room"),
        offline_for: Vec::new(),
    });
    s.write(&batch).unwrap();
    let all = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 1000,
    };
    let room: Vec<i64> = (1..=150).filter(|n| n % 3 != 0).collect();
    let other: Vec<i64> = (1..=150).filter(|n| n % 3 == 0).collect();
    assert_eq!(ids(&s.history("#room", &all).unwrap()), names(&room));
    assert_eq!(ids(&s.history("#other", &all).unwrap()), names(&other));
    assert_eq!(ids(&s.take_offline("bob").unwrap()), names(&[70]));
}

/// The same messages written one per transaction (one chunk each) and in batches of
/// `batch` (chunks of many), both stores holding `#room` and `#other` interleaved.
fn chunked_and_unchunked(count: i64, batch: usize) -> (SqliteStore, SqliteStore) {
    let writes: Vec<Write> = (1..=count)
        .map(|n| Write::Message {
            message: message(n, if n % 5 == 0 { "#other" } else { "#room" }),
            offline_for: Vec::new(),
        })
        .collect();
    let mut one_by_one = SqliteStore::in_memory().unwrap();
    for write in &writes {
        one_by_one.write(std::slice::from_ref(write)).unwrap();
    }
    let mut chunked = SqliteStore::in_memory().unwrap();
    for group in writes.chunks(batch) {
        chunked.write(group).unwrap();
    }
    (one_by_one, chunked)
}

#[test]
fn chunked_history_answers_every_query_as_one_row_per_message_does() {
    let count = 40;
    let (mut expected, mut chunked) = chunked_and_unchunked(count, 7);
    let mut selectors = vec![Selector::Unbounded, Selector::Msgid("nope".into())];
    for n in [0, 1, 2, 5, 6, 7, 8, 13, 14, 15, 20, 21, 39, 40, 41] {
        selectors.push(Selector::Msgid(msgid(n)));
        selectors.push(Selector::Time(1_000 * n));
        selectors.push(Selector::Time(1_000 * n + 500));
    }
    let mut queries = Vec::new();
    for limit in [0, 1, 2, 3, 6, 7, 8, 15, 100] {
        for at in &selectors {
            let at = at.clone();
            queries.push(HistoryQuery::Latest {
                after: at.clone(),
                limit,
            });
            queries.push(HistoryQuery::Before {
                at: at.clone(),
                limit,
            });
            queries.push(HistoryQuery::After {
                at: at.clone(),
                limit,
            });
            queries.push(HistoryQuery::Around {
                at: at.clone(),
                limit,
            });
            for to in selectors.iter().step_by(4) {
                queries.push(HistoryQuery::Between {
                    from: at.clone(),
                    to: to.clone(),
                    limit,
                });
            }
        }
    }
    for target in ["#room", "#other", "#none"] {
        for q in &queries {
            assert_eq!(
                chunked.history(target, q).unwrap(),
                expected.history(target, q).unwrap(),
                "{target} {q:?}"
            );
        }
    }
    for (from, to) in [
        (0, 100_000),
        (3_000, 17_500),
        (17_000, 3_000),
        (5_000, 5_000),
    ] {
        for limit in [1, 2, 10] {
            assert_eq!(
                chunked
                    .active_targets(&["#room".into(), "#other".into()], None, from, to, limit)
                    .unwrap(),
                expected
                    .active_targets(&["#room".into(), "#other".into()], None, from, to, limit)
                    .unwrap(),
                "{from} {to} {limit}"
            );
        }
    }
    assert_eq!(chunked.last_seq().unwrap(), Some(seq(count)));
}

#[test]
fn a_limit_ending_inside_a_chunk_and_around_across_chunks() {
    // Chunks of #room: [1..4], [6..9], [11..14], [16..19] (every fifth is #other).
    let (_, mut s) = chunked_and_unchunked(20, 5);
    let q = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 6,
    };
    assert_eq!(
        ids(&s.history("#room", &q).unwrap()),
        names(&[11, 12, 13, 14, 16, 17, 18, 19][2..])
    );
    let q = HistoryQuery::After {
        at: Selector::Msgid(msgid(2)),
        limit: 3,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[3, 4, 6]));
    let q = HistoryQuery::Around {
        at: Selector::Msgid(msgid(9)),
        limit: 5,
    };
    assert_eq!(
        ids(&s.history("#room", &q).unwrap()),
        names(&[7, 8, 9, 11, 12])
    );
    let q = HistoryQuery::Around {
        at: Selector::Time(10_000),
        limit: 4,
    };
    assert_eq!(
        ids(&s.history("#room", &q).unwrap()),
        names(&[8, 9, 11, 12])
    );
}

#[test]
fn pruning_cuts_a_chunk_that_straddles_the_cut() {
    let (mut expected, mut chunked) = chunked_and_unchunked(30, 8);
    let key = StoredMessage::direct_key("alice", "bob");
    for s in [&mut expected, &mut chunked] {
        s.write(&[
            Write::Message {
                message: message(31, &key),
                offline_for: vec!["bob".into()],
            },
            Write::Message {
                message: message(32, &key),
                offline_for: vec!["bob".into()],
            },
        ])
        .unwrap();
    }
    // Inside the chunk [17..24] and between the two messages for bob.
    for cut in [20_500, 31_500] {
        assert_eq!(chunked.prune(cut).unwrap(), expected.prune(cut).unwrap());
        let all = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 100,
        };
        for target in ["#room", "#other", key.as_str()] {
            assert_eq!(
                chunked.history(target, &all).unwrap(),
                expected.history(target, &all).unwrap(),
                "{target} after a cut at {cut}"
            );
        }
    }
    assert_eq!(ids(&chunked.take_offline("bob").unwrap()), names(&[32]));
    // Everything left of #room is after the cut: it answers from there.
    let q = HistoryQuery::Before {
        at: Selector::Msgid(msgid(25)),
        limit: 100,
    };
    assert!(chunked.history("#room", &q).unwrap().is_empty());
}

#[test]
fn a_message_older_than_history_goes_in_its_place_once() {
    let mut s = SqliteStore::in_memory().unwrap();
    let write = |ns: &[i64]| -> Vec<Write> {
        ns.iter()
            .map(|&n| Write::Message {
                message: message(n, "#room"),
                offline_for: vec!["bob".into()],
            })
            .collect()
    };
    s.write(&write(&[2, 4, 6])).unwrap();
    s.write(&write(&[10, 12])).unwrap();
    // Inside a chunk, between chunks, before all, repeated, and out of order within
    // one transaction.
    s.write(&write(&[5, 8, 1, 4, 12, 14, 13, 14, 5])).unwrap();
    let all = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 100,
    };
    let expected = [1, 2, 4, 5, 6, 8, 10, 12, 13, 14];
    assert_eq!(ids(&s.history("#room", &all).unwrap()), names(&expected));
    assert_eq!(ids(&s.take_offline("bob").unwrap()), names(&expected));
    let q = HistoryQuery::Before {
        at: Selector::Msgid(msgid(6)),
        limit: 2,
    };
    assert_eq!(ids(&s.history("#room", &q).unwrap()), names(&[4, 5]));
}

#[test]
fn a_large_transaction_of_one_conversation_reads_back_whole() {
    let mut s = SqliteStore::in_memory().unwrap();
    // More than one chunk holds, and a second group more than a minute later.
    let mut ns: Vec<i64> = (1..=600).collect();
    ns.extend(700..=720);
    let batch: Vec<Write> = ns
        .iter()
        .map(|&n| Write::Message {
            message: {
                let msgid = Seq::at(n).msgid();
                let mut m = message(n, "#room").with(|m| m.msgid = Some(&msgid));
                m.seq = Seq::at(n);
                m
            },
            offline_for: Vec::new(),
        })
        .collect();
    s.write(&batch).unwrap();
    let all = HistoryQuery::Latest {
        after: Selector::Unbounded,
        limit: 1000,
    };
    let seqs: Vec<Seq> = s
        .history("#room", &all)
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, ns.iter().map(|&n| Seq::at(n)).collect::<Vec<_>>());
    let q = HistoryQuery::Around {
        at: Selector::Msgid(Seq::at(256).msgid().to_string()),
        limit: 4,
    };
    let around: Vec<Seq> = s
        .history("#room", &q)
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(around, [255, 256, 257, 258].map(Seq::at));
}
