//! State updates, key by key: build an app, feed it events, look at its
//! state and at the commands it asks for. No terminal, no clock, no I/O.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use wsadmin_core::{ConnectionInfo, ConnectionRecord, SweepReport};
use wsadmin_tui::app::{LiveState, Mode, SortKey, TargetInfo};
use wsadmin_tui::event::{Event, IdleCheck, LiveCheck, PrunePlan, PruneSummary, Signal, Task};
use wsadmin_tui::row::ConnectionRow;
use wsadmin_tui::{App, Command, Exit};

const NOW: i64 = 1_700_000_000_000;

fn record(i: usize) -> ConnectionRow {
    let mut r = ConnectionRecord::new(format!("id{i:03}=")).connected_at(NOW - 1000 * i as i64);
    r.source_ip = Some(format!("10.0.{}.{}", i % 3, 200 - i % 200));
    r.user_agent = Some(
        if i.is_multiple_of(2) {
            "Firefox"
        } else {
            "curl"
        }
        .to_owned(),
    );
    if i == 7 {
        r.meta.insert("user".into(), "Ana".into());
    }
    r.into()
}

/// An app on a 100x30 screen that has seen `n` records (newest first:
/// id000= is selected).
fn app_with(n: usize) -> App {
    let mut app = App::new(
        TargetInfo {
            context: None,
            endpoint: "http://127.0.0.1:1/dev".into(),
            table: "WS_CONNECTIONS".into(),
            region: "us-east-1".into(),
        },
        2000,
    );
    app.update(Event::Resize {
        width: 100,
        height: 30,
    });
    assert_eq!(
        app.update(Event::Tick { now_ms: NOW }),
        Some(Command::Refresh)
    );
    app.update(Event::Refreshed {
        records: (0..n).map(record).collect(),
        at_ms: NOW,
    });
    app
}

fn press(app: &mut App, code: KeyCode) -> Option<Command> {
    app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ch(app: &mut App, c: char) -> Option<Command> {
    press(app, KeyCode::Char(c))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        assert_eq!(ch(app, c), None);
    }
}

fn selected_id(app: &App) -> &str {
    &app.selected_record().expect("a selection").id
}

#[test]
fn up_down_j_k_move_within_bounds() {
    let mut app = app_with(5);
    assert_eq!(app.selected, 0);
    press(&mut app, KeyCode::Up);
    assert_eq!(app.selected, 0);
    press(&mut app, KeyCode::Down);
    ch(&mut app, 'j');
    assert_eq!(selected_id(&app), "id002=");
    ch(&mut app, 'k');
    assert_eq!(app.selected, 1);
    for _ in 0..10 {
        ch(&mut app, 'j');
    }
    assert_eq!(app.selected, 4);
}

#[test]
fn page_keys_move_a_screenful_and_scroll() {
    let mut app = app_with(1000);
    let page = app.page_size();
    assert!(page > 5, "{page}");
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.selected, page);
    assert!(app.offset <= app.selected && app.selected < app.offset + page);
    press(&mut app, KeyCode::PageDown);
    press(&mut app, KeyCode::PageUp);
    assert_eq!(app.selected, page);
    press(&mut app, KeyCode::PageUp);
    press(&mut app, KeyCode::PageUp);
    assert_eq!((app.selected, app.offset), (0, 0));
}

#[test]
fn g_and_shift_g_jump_to_the_ends() {
    let mut app = app_with(1000);
    ch(&mut app, 'G');
    assert_eq!(app.selected, 999);
    assert_eq!(app.offset, 1000 - app.page_size());
    ch(&mut app, 'g');
    assert_eq!((app.selected, app.offset), (0, 0));
}

#[test]
fn slash_filters_on_id_ip_user_agent_and_meta() {
    let mut app = app_with(10);
    ch(&mut app, '/');
    assert_eq!(app.mode, Mode::Filter);
    typed(&mut app, "CURL");
    assert_eq!(app.visible_len(), 5, "user agent, case-insensitively");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        (app.mode.clone(), app.filter.as_str()),
        (Mode::Normal, "CURL")
    );

    ch(&mut app, '/');
    press(&mut app, KeyCode::Esc);
    assert_eq!((app.filter.as_str(), app.visible_len()), ("", 10));

    for (needle, hits) in [("id003", 1), ("10.0.2.", 3), ("ana", 1), ("nothing", 0)] {
        ch(&mut app, '/');
        typed(&mut app, needle);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.visible_len(), hits, "{needle}");
        ch(&mut app, '/');
        app.update(Event::Key(KeyEvent::new(
            KeyCode::Char('u'),
            KeyModifiers::CONTROL,
        )));
        press(&mut app, KeyCode::Enter);
    }
    ch(&mut app, '/');
    typed(&mut app, "xy");
    press(&mut app, KeyCode::Backspace);
    assert_eq!(app.filter, "x");
}

#[test]
fn s_cycles_the_sort_and_keeps_the_selection() {
    let mut app = app_with(5);
    ch(&mut app, 'j');
    assert_eq!(selected_id(&app), "id001=");
    ch(&mut app, 's');
    assert_eq!(app.sort, SortKey::Oldest);
    assert_eq!(&*app.row(0).unwrap().id, "id004=");
    assert_eq!(selected_id(&app), "id001=");
    ch(&mut app, 's');
    assert_eq!(app.sort, SortKey::Id);
    ch(&mut app, 's');
    assert_eq!(app.sort, SortKey::SourceIp);
    assert_eq!(&*app.row(0).unwrap().id, "id003=", "10.0.0.197");
    ch(&mut app, 's');
    assert_eq!(app.sort, SortKey::UserAgent);
    assert_eq!(app.row(0).unwrap().user_agent.as_deref(), Some("Firefox"));
    ch(&mut app, 's');
    assert_eq!(app.sort, SortKey::Newest);
}

#[test]
fn enter_inspects_in_the_background() {
    let mut app = app_with(3);
    ch(&mut app, 'j');
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Command::Probe {
            id: "id001=".into()
        })
    );
    assert_eq!(app.details.as_ref().unwrap().live, LiveState::Fetching);
    let info = ConnectionInfo {
        connected_at: Some(NOW - 1000),
        last_active_at: Some(NOW - 500),
        source_ip: None,
        user_agent: None,
    };
    app.update(Event::Probed {
        id: "id001=".into(),
        record: None,
        live: LiveCheck::Live(info.clone()),
    });
    assert!(
        matches!(&app.details.as_ref().unwrap().live, LiveState::Live { info: i, .. } if *i == info)
    );
    assert_eq!(
        app.idle.get("id001=").map(|e| &e.check),
        Some(&IdleCheck::Live {
            last_active_at: Some(NOW - 500)
        }),
        "feeds the idle column"
    );

    press(&mut app, KeyCode::Esc);
    assert_eq!(app.details, None, "Esc closes the details first");
    assert!(!app.should_quit());

    press(&mut app, KeyCode::Enter);
    app.update(Event::Probed {
        id: "id001=".into(),
        record: None,
        live: LiveCheck::Gone,
    });
    assert!(matches!(
        app.details.as_ref().unwrap().live,
        LiveState::Gone { .. }
    ));
}

#[test]
fn enter_on_an_empty_table_does_nothing() {
    let mut app = app_with(0);
    assert_eq!(press(&mut app, KeyCode::Enter), None);
    assert_eq!(app.details, None);
}

#[test]
fn m_messages_the_selected_connection() {
    let mut app = app_with(3);
    ch(&mut app, 'j');
    ch(&mut app, 'm');
    assert!(matches!(&app.mode, Mode::Message { id, .. } if id == "id001="));
    typed(&mut app, "hello q?");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Command::Send {
            id: "id001=".into(),
            text: "hello q?".into()
        })
    );
    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.should_quit(), "q was typed, not pressed");
    app.update(Event::Sent {
        id: "id001=".into(),
    });
    assert!(app.log.back().unwrap().text.contains("delivered to id001="));

    ch(&mut app, 'm');
    assert_eq!(press(&mut app, KeyCode::Enter), None, "nothing to send");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn b_broadcasts_after_a_confirmation_with_the_count() {
    let mut app = app_with(4);
    ch(&mut app, 'b');
    typed(&mut app, "bye");
    assert_eq!(press(&mut app, KeyCode::Enter), None);
    assert_eq!(
        app.mode,
        Mode::ConfirmBroadcast {
            text: "bye".into(),
            rows: None
        }
    );
    assert_eq!(
        ch(&mut app, 'y'),
        Some(Command::Broadcast {
            text: "bye".into(),
            expected: 4,
            ids: None
        })
    );
    assert_eq!(app.broadcast.map(|b| (b.done, b.total)), Some((0, 4)));

    ch(&mut app, 'b');
    assert_eq!(app.mode, Mode::Normal, "one broadcast at a time");

    app.update(Event::BroadcastProgress { done: 3, total: 4 });
    assert_eq!(app.broadcast.map(|b| b.done), Some(3));
    let done = app.update(Event::BroadcastDone(SweepReport {
        targeted: 4,
        delivered: 4,
        ..SweepReport::default()
    }));
    assert_eq!(
        done,
        Some(Command::Refresh),
        "the registry may have changed"
    );
    assert_eq!(app.broadcast, None);

    ch(&mut app, 'b');
    typed(&mut app, "x");
    press(&mut app, KeyCode::Enter);
    assert_eq!(ch(&mut app, 'n'), None);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn d_disconnects_after_a_confirmation() {
    let mut app = app_with(3);
    ch(&mut app, 'd');
    assert_eq!(
        app.mode,
        Mode::ConfirmDisconnect {
            id: "id000=".into()
        }
    );
    assert_eq!(ch(&mut app, 'x'), None, "other keys wait for an answer");
    assert_eq!(press(&mut app, KeyCode::Esc), None);
    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.should_quit());

    ch(&mut app, 'd');
    assert_eq!(
        ch(&mut app, 'y'),
        Some(Command::Disconnect {
            id: "id000=".into()
        })
    );
    let after = app.update(Event::Disconnected {
        id: "id000=".into(),
        was_gone: false,
    });
    assert_eq!(after, Some(Command::Refresh));
}

#[test]
fn p_plans_then_prunes_on_confirmation() {
    let mut app = app_with(5);
    assert_eq!(ch(&mut app, 'p'), Some(Command::PlanPrune));
    assert_eq!(
        app.mode,
        Mode::PrunePlanning {
            checked: 0,
            total: 5
        }
    );
    app.update(Event::PruneProgress {
        checked: 2,
        total: 5,
    });
    assert_eq!(
        app.mode,
        Mode::PrunePlanning {
            checked: 2,
            total: 5
        }
    );
    let plan = PrunePlan {
        stale: vec!["id003=".into(), "id004=".into()],
        checked: 5,
        ..PrunePlan::default()
    };
    app.update(Event::PrunePlanned(plan.clone()));
    assert_eq!(app.mode, Mode::ConfirmPrune { plan });
    assert_eq!(app.stale, Some(2));
    assert_eq!(
        ch(&mut app, 'y'),
        Some(Command::Prune {
            ids: vec!["id003=".into(), "id004=".into()]
        })
    );
    assert!(app.pruning);
    assert_eq!(ch(&mut app, 'p'), None, "one prune at a time");
    let after = app.update(Event::Pruned(PruneSummary {
        removed: 2,
        ..PruneSummary::default()
    }));
    assert_eq!(after, Some(Command::Refresh));
    assert_eq!((app.pruning, app.stale), (false, Some(0)));
}

#[test]
fn an_empty_prune_plan_only_closes() {
    let mut app = app_with(2);
    ch(&mut app, 'p');
    app.update(Event::PrunePlanned(PrunePlan {
        checked: 2,
        ..PrunePlan::default()
    }));
    assert_eq!(ch(&mut app, 'y'), None);
    assert_eq!(app.mode, Mode::Normal);
}

/// A prune plan of one stale record (`stale`, of `checked`) arrives while
/// the plan is hidden: nothing opens, the log says what it found.
fn a_hidden_plan_is_logged(app: &mut App, stale: &str, checked: u64) {
    app.update(Event::PrunePlanned(PrunePlan {
        stale: vec![stale.into()],
        checked,
        ..PrunePlan::default()
    }));
    assert_eq!(app.mode, Mode::Normal);
    let said = &app.log.back().expect("a log line").text;
    assert!(
        said.contains(&format!("1 of {checked} records are stale")),
        "{said}"
    );
}

#[test]
fn a_hidden_prune_dry_run_logs_its_plan() {
    let mut app = app_with(2);
    ch(&mut app, 'p');
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
    a_hidden_plan_is_logged(&mut app, "id001=", 2);
}

#[test]
fn r_refreshes_unless_one_is_running() {
    let mut app = app_with(1);
    assert_eq!(ch(&mut app, 'r'), Some(Command::Refresh));
    assert!(app.refreshing);
    assert_eq!(ch(&mut app, 'r'), None);
}

#[test]
fn ticks_refresh_every_interval() {
    let mut app = app_with(1);
    assert_eq!(
        app.update(Event::Tick { now_ms: NOW + 1999 }),
        Some(Command::ProbeIdle {
            ids: vec!["id000=".into()]
        }),
        "not a refresh yet (the IDLE column asks about its row)"
    );
    assert_eq!(
        app.update(Event::Tick { now_ms: NOW + 2000 }),
        Some(Command::Refresh)
    );
    assert_eq!(
        app.update(Event::Tick { now_ms: NOW + 9000 }),
        None,
        "still running"
    );
}

#[test]
fn a_change_during_a_refresh_refreshes_again_after_it() {
    let mut app = app_with(2);
    ch(&mut app, 'r');
    ch(&mut app, 'd');
    ch(&mut app, 'y');
    let after = app.update(Event::Disconnected {
        id: "id000=".into(),
        was_gone: false,
    });
    assert_eq!(after, None, "a refresh is already running");
    let refreshed = app.update(Event::Refreshed {
        records: vec![record(0), record(1)],
        at_ms: NOW + 100,
    });
    assert_eq!(refreshed, Some(Command::Refresh));
}

#[test]
fn question_mark_toggles_help_which_swallows_keys() {
    let mut app = app_with(3);
    ch(&mut app, '?');
    assert!(app.show_help);
    assert_eq!(ch(&mut app, 'd'), None);
    assert_eq!(app.mode, Mode::Normal);
    ch(&mut app, '?');
    assert!(!app.show_help);
    ch(&mut app, '?');
    press(&mut app, KeyCode::Esc);
    assert!(!app.show_help && !app.should_quit());
}

#[test]
fn q_quits() {
    let mut app = app_with(1);
    ch(&mut app, 'q');
    assert!(app.should_quit());
}

#[test]
fn esc_quits_once_nothing_is_open() {
    let mut app = app_with(3);
    ch(&mut app, '/');
    typed(&mut app, "id");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Esc);
    assert_eq!((app.filter.as_str(), app.should_quit()), ("", false));
    press(&mut app, KeyCode::Esc);
    assert!(app.should_quit());
}

#[test]
fn ctrl_c_quits_from_any_mode() {
    let mut app = app_with(3);
    ch(&mut app, 'b');
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.should_quit());
}

fn ctrl_c(app: &mut App) -> Option<Command> {
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )))
}

/// Types and confirms a broadcast of `text`: it is running afterwards.
fn start_broadcast(app: &mut App, text: &str) {
    ch(app, 'b');
    typed(app, text);
    press(app, KeyCode::Enter);
    assert!(matches!(ch(app, 'y'), Some(Command::Broadcast { .. })));
}

/// Plans a prune of the oldest record and confirms it: it is running
/// afterwards.
fn start_prune(app: &mut App) {
    assert_eq!(ch(app, 'p'), Some(Command::PlanPrune));
    let stale = app.records().last().expect("a record").id.to_string();
    app.update(Event::PrunePlanned(PrunePlan {
        stale: vec![stale],
        checked: app.records().len() as u64,
        ..PrunePlan::default()
    }));
    assert!(matches!(ch(app, 'y'), Some(Command::Prune { .. })));
    assert!(app.pruning);
}

fn asking_to_quit(app: &App) -> bool {
    matches!(app.mode, Mode::ConfirmQuit { .. })
}

#[test]
fn q_during_a_broadcast_asks_n_stays_y_quits() {
    let mut app = app_with(4);
    start_broadcast(&mut app, "bye");
    assert_eq!(ch(&mut app, 'q'), None);
    assert!(
        !app.should_quit(),
        "a running broadcast is not abandoned at once"
    );
    assert_eq!(
        app.mode,
        Mode::ConfirmQuit {
            back: Box::new(Mode::Normal)
        }
    );
    assert_eq!(ch(&mut app, 'j'), None, "other keys wait for an answer");
    assert_eq!(ch(&mut app, 'q'), None);
    assert!(asking_to_quit(&app) && !app.should_quit());
    ch(&mut app, 'n');
    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.should_quit());
    assert!(app.broadcast.is_some(), "the broadcast goes on");

    ch(&mut app, 'q');
    press(&mut app, KeyCode::Esc);
    assert_eq!((app.mode.clone(), app.should_quit()), (Mode::Normal, false));

    ch(&mut app, 'q');
    assert_eq!(ch(&mut app, 'y'), None);
    assert_eq!(app.exit, Some(Exit::Quit));
    assert_eq!(Exit::Quit.code(), 0);
}

#[test]
fn esc_and_ctrl_c_ask_during_a_prune_and_no_returns_to_what_was_open() {
    let mut app = app_with(3);
    start_prune(&mut app);
    press(&mut app, KeyCode::Esc);
    assert!(
        asking_to_quit(&app),
        "Esc with nothing open would quit: it asks"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);

    ch(&mut app, 'm');
    typed(&mut app, "half a sen");
    ctrl_c(&mut app);
    assert!(asking_to_quit(&app) && !app.should_quit());
    ch(&mut app, 'n');
    assert_eq!(
        app.mode,
        Mode::Message {
            id: "id000=".into(),
            input: "half a sen".into()
        },
        "the message being typed is still there"
    );

    ctrl_c(&mut app);
    assert!(asking_to_quit(&app));
    ctrl_c(&mut app);
    assert_eq!(app.exit, Some(Exit::Quit), "a second Ctrl-C insists");
}

#[test]
fn quitting_asks_only_while_work_would_be_abandoned() {
    let mut app = app_with(3);
    start_broadcast(&mut app, "x");
    start_prune(&mut app);
    app.update(Event::BroadcastDone(SweepReport::default()));
    ch(&mut app, 'q');
    assert!(asking_to_quit(&app), "the prune still runs");
    ch(&mut app, 'n');
    app.update(Event::Pruned(PruneSummary::default()));
    ch(&mut app, 'q');
    assert_eq!(app.exit, Some(Exit::Quit), "nothing runs: q quits at once");

    // A failed broadcast is over too.
    let mut app = app_with(3);
    start_broadcast(&mut app, "x");
    app.update(Event::Failed {
        task: Task::Broadcast,
        message: "throttled".into(),
    });
    ctrl_c(&mut app);
    assert_eq!(app.exit, Some(Exit::Quit));

    // The prune dry run only reads: it is not asked about.
    let mut app = app_with(3);
    ch(&mut app, 'p');
    ctrl_c(&mut app);
    assert_eq!(app.exit, Some(Exit::Quit));
}

#[test]
fn asking_during_a_dry_run_hides_it_and_its_plan_is_logged() {
    let mut app = app_with(3);
    start_broadcast(&mut app, "x");
    ch(&mut app, 'p');
    ctrl_c(&mut app);
    assert!(asking_to_quit(&app));
    ch(&mut app, 'n');
    assert_eq!(app.mode, Mode::Normal);
    a_hidden_plan_is_logged(&mut app, "id002=", 3);
}

#[test]
fn help_gives_way_to_the_question() {
    let mut app = app_with(3);
    start_broadcast(&mut app, "x");
    ch(&mut app, '?');
    ctrl_c(&mut app);
    assert!(asking_to_quit(&app) && !app.show_help);
}

#[test]
fn a_signal_ends_the_dashboard_at_once_whatever_runs_or_is_open() {
    for (signal, code) in [
        (Signal::Interrupt, 130),
        (Signal::Terminate, 143),
        (Signal::Hangup, 129),
    ] {
        let mut app = app_with(3);
        start_broadcast(&mut app, "x");
        start_prune(&mut app);
        ch(&mut app, 'q');
        assert!(asking_to_quit(&app));
        assert_eq!(app.update(Event::Signal(signal)), None);
        assert_eq!(app.exit, Some(Exit::Signal(signal)), "{signal:?}");
        assert_eq!(Exit::Signal(signal).code(), code);

        let mut app = app_with(3);
        ch(&mut app, 'b');
        typed(&mut app, "half");
        app.update(Event::Signal(signal));
        assert_eq!(app.exit, Some(Exit::Signal(signal)), "{signal:?}");
    }
}

#[test]
fn refreshes_log_connects_and_disconnects_and_rate_them() {
    let mut app = app_with(3);
    app.update(Event::Tick {
        now_ms: NOW + 30_000,
    });
    app.update(Event::Refreshed {
        records: vec![record(1), record(2), record(3), record(4)],
        at_ms: NOW + 30_000,
    });
    let log: Vec<&str> = app.log.iter().map(|e| e.text.as_str()).collect();
    assert!(log.iter().any(|l| l.starts_with("+ id003=")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("+ id004=")), "{log:?}");
    assert!(
        log.iter().any(|l| l.starts_with("- id000= went away")),
        "{log:?}"
    );
    let (up, down) = app.rates_per_minute().unwrap();
    assert_eq!((up, down), (4.0, 2.0));
    assert_eq!(app.history.iter().copied().collect::<Vec<_>>(), vec![3, 4]);
}

#[test]
fn the_selection_follows_its_connection_across_refreshes() {
    let mut app = app_with(5);
    ch(&mut app, 'j');
    ch(&mut app, 'j');
    assert_eq!(selected_id(&app), "id002=");
    app.update(Event::Refreshed {
        records: vec![record(2), record(3), record(4)],
        at_ms: NOW + 2000,
    });
    assert_eq!(selected_id(&app), "id002=");
    assert_eq!(app.selected, 0);
}

#[test]
fn failures_are_shown_and_the_next_refresh_clears_them() {
    let mut app = app_with(2);
    ch(&mut app, 'r');
    app.update(Event::Failed {
        task: Task::Refresh,
        message: "no AWS credentials\x1b[31m".into(),
    });
    let error = app.error.clone().unwrap();
    assert!(
        error.contains("refresh failed: no AWS credentials\\x1b[31m"),
        "{error}"
    );
    assert!(!app.refreshing);
    assert_eq!(app.records().len(), 2, "the last good data stays");
    assert_eq!(
        app.update(Event::Tick { now_ms: NOW + 1000 }),
        Some(Command::ProbeIdle {
            ids: vec!["id000=".into(), "id001=".into()]
        }),
        "not a refresh yet (the IDLE column asks about its rows)"
    );
    assert_eq!(
        app.update(Event::Tick { now_ms: NOW + 2000 }),
        Some(Command::Refresh),
        "and it keeps trying"
    );
    app.update(Event::Refreshed {
        records: vec![record(0)],
        at_ms: NOW + 2100,
    });
    assert_eq!(app.error, None);
}

#[test]
fn a_failed_broadcast_or_prune_frees_its_slot() {
    let mut app = app_with(2);
    ch(&mut app, 'b');
    typed(&mut app, "x");
    press(&mut app, KeyCode::Enter);
    ch(&mut app, 'y');
    app.update(Event::Failed {
        task: Task::Broadcast,
        message: "throttled".into(),
    });
    assert_eq!(app.broadcast, None);
    ch(&mut app, 'p');
    app.update(Event::Failed {
        task: Task::PlanPrune,
        message: "boom".into(),
    });
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn resize_keeps_the_selection_on_screen() {
    let mut app = app_with(200);
    ch(&mut app, 'G');
    app.update(Event::Resize {
        width: 40,
        height: 10,
    });
    let page = app.page_size();
    assert!(app.offset <= app.selected && app.selected < app.offset + page);
}

/// Rows in room 7 (ids r7-0= …) and room 8 (r8-0= …), on a 100x30 screen.
fn rooms_app(in7: usize, in8: usize) -> App {
    let mut app = app_with(0);
    let row = |room: u8, i: usize| -> ConnectionRow {
        let mut r = ConnectionRecord::new(format!("r{room}-{i}=")).connected_at(NOW - 1000);
        r.meta.insert("room".into(), room.to_string());
        r.into()
    };
    let records = (0..in7)
        .map(|i| row(7, i))
        .chain((0..in8).map(|i| row(8, i)))
        .collect();
    app.update(Event::Refreshed {
        records,
        at_ms: NOW + 1,
    });
    app
}

fn filter(app: &mut App, text: &str) {
    ch(app, '/');
    typed(app, text);
    press(app, KeyCode::Enter);
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[test]
fn with_a_filter_b_broadcasts_to_the_filtered_rows_named_in_the_confirmation() {
    let mut app = rooms_app(3, 2);
    filter(&mut app, "room=7");
    assert_eq!(app.visible_len(), 3);
    ch(&mut app, 'b');
    typed(&mut app, "hi 7");
    press(&mut app, KeyCode::Enter);
    let Mode::ConfirmBroadcast {
        rows: Some(rows), ..
    } = &app.mode
    else {
        panic!(
            "expected a confirmation of the filtered rows: {:?}",
            app.mode
        )
    };
    assert_eq!(rows.filter, "room=7");
    assert_eq!(
        wsadmin_tui::app::rows_matching(rows.ids.len(), &rows.filter),
        "the 3 rows matching room=7"
    );
    let Some(Command::Broadcast {
        text,
        expected,
        ids: Some(ids),
    }) = ch(&mut app, 'y')
    else {
        panic!("expected a broadcast to the rows")
    };
    assert_eq!((text.as_str(), expected), ("hi 7", 3));
    assert_eq!(sorted(ids), ["r7-0=", "r7-1=", "r7-2="]);
    assert!(
        app.log
            .back()
            .unwrap()
            .text
            .ends_with("to the 3 rows matching room=7"),
        "{:?}",
        app.log.back()
    );

    // A filter that matches nothing has nothing to broadcast to.
    app.update(Event::BroadcastDone(SweepReport::default()));
    filter(&mut app, "room=9");
    ch(&mut app, 'b');
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn the_confirmed_rows_are_what_is_sent_whatever_a_refresh_brings() {
    let mut app = rooms_app(2, 1);
    filter(&mut app, "room=7");
    ch(&mut app, 'b');
    typed(&mut app, "x");
    press(&mut app, KeyCode::Enter);
    // A refresh while the question is open: a third room-7 row appears.
    app.update(Event::Refreshed {
        records: rooms_app(3, 1).records().to_vec(),
        at_ms: NOW + 2000,
    });
    let Some(Command::Broadcast { ids: Some(ids), .. }) = ch(&mut app, 'y') else {
        panic!("expected a broadcast to the rows")
    };
    assert_eq!(
        sorted(ids),
        ["r7-0=", "r7-1="],
        "what the operator confirmed"
    );
}

#[test]
fn shift_d_disconnects_the_filtered_rows_after_a_confirmation_and_only_with_a_filter() {
    let mut app = rooms_app(2, 2);
    assert_eq!(ch(&mut app, 'D'), None);
    assert_eq!(app.mode, Mode::Normal, "without a filter D does nothing");
    assert!(app.log.back().unwrap().text.contains("filter first"));

    filter(&mut app, "room=8");
    ch(&mut app, 'D');
    let Mode::ConfirmDisconnectRows { rows } = &app.mode else {
        panic!("expected a confirmation: {:?}", app.mode)
    };
    assert_eq!(
        wsadmin_tui::app::rows_matching(rows.ids.len(), &rows.filter),
        "the 2 rows matching room=8"
    );
    assert_eq!(ch(&mut app, 'x'), None, "other keys wait for an answer");
    assert_eq!(press(&mut app, KeyCode::Esc), None);
    assert_eq!(app.mode, Mode::Normal);

    ch(&mut app, 'D');
    let Some(Command::DisconnectRows { ids }) = ch(&mut app, 'y') else {
        panic!("expected DisconnectRows")
    };
    assert_eq!(sorted(ids), ["r8-0=", "r8-1="]);
    assert_eq!(app.disconnecting, Some(2));
    assert!(app.quitting_abandons_work());
    ch(&mut app, 'q');
    assert!(asking_to_quit(&app), "quitting would leave the rest open");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
    ch(&mut app, 'D');
    assert!(
        matches!(app.mode, Mode::Normal),
        "one disconnect of rows at a time"
    );
    let after = app.update(Event::DisconnectedRows(SweepReport {
        targeted: 2,
        disconnected: 2,
        ..SweepReport::default()
    }));
    assert_eq!(after, Some(Command::Refresh), "the registry changed");
    assert_eq!(app.disconnecting, None);
    assert_eq!(
        app.log.back().unwrap().text,
        "disconnected 2 of 2 (0 already closed, 0 failed)"
    );
}

#[test]
fn plain_text_filters_also_scope_the_actions() {
    let mut app = app_with(10);
    filter(&mut app, "ana");
    ch(&mut app, 'D');
    let Mode::ConfirmDisconnectRows { rows } = &app.mode else {
        panic!("expected a confirmation: {:?}", app.mode)
    };
    assert_eq!(rows.ids, ["id007="]);
    assert_eq!(
        wsadmin_tui::app::rows_matching(rows.ids.len(), &rows.filter),
        "the 1 row matching ana"
    );
}

/// Answers a ProbeIdle: every id live, last active `idle_ms` before NOW.
fn answer(app: &mut App, ids: &[String], idle_ms: impl Fn(&str) -> i64) {
    app.update(Event::IdleProbed {
        results: ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    IdleCheck::Live {
                        last_active_at: Some(NOW - idle_ms(id)),
                    },
                )
            })
            .collect(),
    });
}

/// A tick at `t`; a refresh it starts is answered with the same records
/// and the tick repeated, so what is left is the IDLE column's business.
fn tick(app: &mut App, t: i64) -> Option<Command> {
    match app.update(Event::Tick { now_ms: t }) {
        Some(Command::Refresh) => {
            let records = app.records().to_vec();
            app.update(Event::Refreshed { records, at_ms: t });
            app.update(Event::Tick { now_ms: t })
        }
        other => other,
    }
}

fn probe_idle(command: Option<Command>) -> Vec<String> {
    match command {
        Some(Command::ProbeIdle { ids }) => ids,
        other => panic!("expected ProbeIdle, got {other:?}"),
    }
}

#[test]
fn the_idle_column_asks_about_visible_rows_only_paced_and_cached() {
    use wsadmin_tui::app::{IDLE_BATCH, IDLE_EVERY_MS, IDLE_MAX_AGE_MS};
    let mut app = app_with(1000);
    let page = app.page_size();
    let mut t = NOW + 1;
    let first = probe_idle(app.update(Event::Tick { now_ms: t }));
    assert_eq!(first.len(), IDLE_BATCH);
    assert_eq!(first[0], "id000=");
    // One batch at a time, and at most one per IDLE_EVERY_MS.
    assert_eq!(app.update(Event::Tick { now_ms: t + 100 }), None);
    answer(&mut app, &first, |_| 5_000);
    assert_eq!(app.update(Event::Tick { now_ms: t + 200 }), None);
    let mut asked = first;
    loop {
        t += IDLE_EVERY_MS;
        match tick(&mut app, t) {
            None => break,
            c => {
                let ids = probe_idle(c);
                assert!(ids.len() <= IDLE_BATCH);
                answer(&mut app, &ids, |_| 5_000);
                asked.extend(ids);
            }
        }
    }
    let visible: Vec<String> = (0..page)
        .map(|i| app.row(i).unwrap().id.to_string())
        .collect();
    assert_eq!(sorted(asked), sorted(visible), "each visible row once");

    // Paging down asks about the new page.
    press(&mut app, KeyCode::PageDown);
    press(&mut app, KeyCode::PageDown);
    t += IDLE_EVERY_MS;
    let ids = probe_idle(tick(&mut app, t));
    let on_screen = app.offset..app.offset + page;
    for id in &ids {
        let at = (0..app.visible_len())
            .position(|i| *app.row(i).unwrap().id == **id)
            .unwrap();
        assert!(on_screen.contains(&at), "{id} at {at} is not on screen");
    }
    // Failures are cached too, and asked again only once old.
    app.update(Event::IdleProbed {
        results: ids
            .iter()
            .map(|id| (id.clone(), IdleCheck::Failed("throttled".into())))
            .collect(),
    });
    assert!(
        ids.iter()
            .all(|id| matches!(app.idle[id].check, IdleCheck::Failed(_)))
    );
    press(&mut app, KeyCode::Char('g'));
    let stale_at = NOW + 200 + IDLE_MAX_AGE_MS;
    let again = probe_idle(tick(&mut app, stale_at));
    assert_eq!(again[0], "id000=", "an answer older than the max age");
}

#[test]
fn i_sorts_by_idle_most_idle_first_and_unknown_last() {
    let mut app = app_with(5);
    let ids = probe_idle(app.update(Event::Tick { now_ms: NOW + 1 }));
    assert_eq!(ids, ["id000=", "id001=", "id002=", "id003="]);
    // id002= idle longest, id000= least; id004= not asked yet.
    answer(&mut app, &ids, |id| match id {
        "id000=" => 1_000,
        "id001=" => 20_000,
        "id002=" => 90_000,
        _ => 10_000,
    });
    ch(&mut app, 'i');
    assert_eq!(app.sort, SortKey::Idle);
    assert_eq!(app.sort.label(), "idle");
    let order: Vec<String> = (0..5).map(|i| app.row(i).unwrap().id.to_string()).collect();
    assert_eq!(order, ["id002=", "id001=", "id003=", "id000=", "id004="]);
    // Answers arriving re-sort.
    answer(&mut app, &["id004=".to_owned()], |_| 1_000_000);
    assert_eq!(&*app.row(0).unwrap().id, "id004=");
    ch(&mut app, 'i');
    assert_eq!(app.sort, SortKey::Newest, "i again goes back");
    ch(&mut app, 'i');
    ch(&mut app, 's');
    assert_eq!(app.sort, SortKey::Newest, "s leaves the idle sort too");
}

#[test]
fn idle_answers_of_connections_that_went_away_are_dropped() {
    let mut app = app_with(3);
    let ids = probe_idle(app.update(Event::Tick { now_ms: NOW + 1 }));
    answer(&mut app, &ids, |_| 1_000);
    assert_eq!(app.idle.len(), 3);
    app.update(Event::Refreshed {
        records: vec![record(1)],
        at_ms: NOW + 2000,
    });
    assert_eq!(app.idle.keys().collect::<Vec<_>>(), ["id001="]);
}

#[test]
fn an_unanswered_idle_batch_is_given_up_on_so_the_column_goes_on() {
    use wsadmin_tui::app::IDLE_GIVE_UP_MS;
    let mut app = app_with(3);
    let t = NOW + 1;
    let first = probe_idle(tick(&mut app, t));
    assert_eq!(
        tick(&mut app, t + IDLE_GIVE_UP_MS - 1),
        None,
        "still waiting"
    );
    assert_eq!(probe_idle(tick(&mut app, t + IDLE_GIVE_UP_MS)), first);
}

/// One row per name (ids n0= …), each also in room 7.
fn names_app(names: &[&str]) -> (App, Vec<ConnectionRecord>) {
    let mut app = app_with(0);
    let records: Vec<ConnectionRecord> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut r = ConnectionRecord::new(format!("n{i}=")).connected_at(NOW - 1000);
            r.meta.insert("name".into(), (*name).into());
            r.meta.insert("room".into(), "7".into());
            r
        })
        .collect();
    app.update(Event::Refreshed {
        records: records.iter().cloned().map(ConnectionRow::from).collect(),
        at_ms: NOW + 1,
    });
    (app, records)
}

/// Replaces the filter (`/`, Ctrl-U, the text, Enter).
fn refilter(app: &mut App, text: &str) {
    ch(app, '/');
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    typed(app, text);
    press(app, KeyCode::Enter);
}

/// The ids `D` under the filter would close, as confirmed.
fn d_targets(app: &mut App, selector: &str) -> Vec<String> {
    refilter(app, selector);
    ch(app, 'D');
    let Some(Command::DisconnectRows { ids }) = ch(app, 'y') else {
        panic!("{selector}: expected DisconnectRows, mode {:?}", app.mode)
    };
    app.update(Event::DisconnectedRows(SweepReport::default()));
    sorted(ids)
}

#[test]
fn the_filter_selects_on_real_values_exactly_as_where_does() {
    let names = wsadmin_testkit::AWKWARD_NAMES;
    let (mut app, records) = names_app(&names);
    let selectors = names
        .iter()
        .map(|n| format!("name={}", wsadmin_core::filter::quote_value(n)))
        .chain(
            [
                "name=Ana",
                "name=Ana*",
                "name!=Ana",
                "name in (Ana, a=b)",
                "name=Zoë*",
                "name=*名前",
            ]
            .map(String::from),
        );
    for selector in selectors {
        let by_where: wsadmin_core::filter::Where = selector.parse().unwrap();
        let expected = sorted(
            records
                .iter()
                .filter(|r| by_where.matches(r))
                .map(|r| r.connection_id.clone())
                .collect(),
        );
        assert!(!expected.is_empty(), "{selector} selects someone");
        assert_eq!(d_targets(&mut app, &selector), expected, "{selector}");
    }
    // Ana alone: not Ana Maria (which a `k=v k=v` split took for name=Ana).
    assert_eq!(d_targets(&mut app, "name=Ana"), ["n0="]);
}

#[test]
fn b_and_d_refuse_a_filter_that_is_a_broken_selector() {
    let (mut app, _) = names_app(&["Ana", "Bo"]);
    for broken in ["!room>2", "room<2", "name=\"Ana"] {
        refilter(&mut app, broken);
        for key in ['D', 'b'] {
            assert_eq!(ch(&mut app, key), None);
            assert_eq!(app.mode, Mode::Normal, "{broken}: {key} asks nothing");
            let said = &app.log.back().unwrap().text;
            assert!(said.starts_with("not a selector"), "{broken}: {said}");
        }
    }
}
