//! The Ceph, Velero and Rollouts panes and their tile bodies, built from the lab's world
//! objects in the healthy, ceph-degraded, backup-stale, canary-bad and az-failure
//! scenarios, on a TestBackend at 80x24 and 160x48. Health colours are asserted on
//! cells; the status reports' findings are asserted per scenario.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{fg_of, find, rows, text};
use k8s_openapi::api::core::v1::ConfigMap;
use kha::config::theme::Theme;
use kha::lab::topology::{Faults, LabSpec, Scenario, Topology};
use kha::model::ceph::{self, CephReport, CephView};
use kha::model::finding::Health;
use kha::model::rollouts::{self, RolloutSources, RolloutsReport, RolloutsView};
use kha::model::velero::{self, VeleroObjects, VeleroReport, VeleroSettings, VeleroView};
use kha::ui::ceph::parts::{Freshness, PaneCursor};
use kha::ui::ceph::{CephPane, tile_lines as ceph_tile};
use kha::ui::rollouts::{RolloutsPane, tile_lines as rollouts_tile};
use kha::ui::velero::{VeleroPane, tile_lines as velero_tile};
use kube::api::DynamicObject;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];
const SCENARIOS: [Scenario; 5] = [
    Scenario::Healthy,
    Scenario::CephDegraded,
    Scenario::BackupStale,
    Scenario::CanaryBad,
    Scenario::AzFailure,
];

/// 2026-03-10T09:30:00Z: the day's 02:00 backup finished seven hours ago.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_773_135_000)
}

fn theme(name: &str) -> Theme {
    Theme::shipped(name).expect("shipped theme")
}

struct World {
    objects: Vec<serde_json::Value>,
}

impl World {
    fn new(scenario: Scenario) -> World {
        let spec = LabSpec {
            scenario,
            ..LabSpec::default()
        };
        let topo = Topology::generate(&spec);
        let faults = Faults::for_scenario(scenario, &topo);
        World {
            objects: kha::lab::world::objects(&topo, &spec, &faults, now()),
        }
    }

    fn kind(&self, kind: &str) -> Vec<DynamicObject> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .map(|o| serde_json::from_value(o.clone()).expect("a DynamicObject"))
            .collect()
    }

    fn ceph(&self) -> CephView {
        let cm: Option<ConfigMap> = self
            .objects
            .iter()
            .find(|o| {
                o["kind"] == "ConfigMap" && o["metadata"]["name"] == "rook-ceph-mon-endpoints"
            })
            .map(|o| serde_json::from_value(o.clone()).expect("a ConfigMap"));
        ceph::derive(&self.kind("CephCluster"), cm.as_ref(), now())
    }

    fn velero(&self) -> VeleroView {
        let objs = VeleroObjects {
            schedules: self.kind("Schedule"),
            backups: self.kind("Backup"),
            locations: self.kind("BackupStorageLocation"),
            restores: self.kind("Restore"),
        };
        velero::derive(&objs, &VeleroSettings::default(), now())
    }

    fn rollouts(&self) -> RolloutsView {
        let replica_sets: Vec<DynamicObject> = self
            .kind("ReplicaSet")
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(rollouts::HASH_LABEL))
            })
            .collect();
        rollouts::derive_with(
            &RolloutSources {
                rollouts: &self.kind("Rollout"),
                analysis_runs: &self.kind("AnalysisRun"),
                replica_sets: &replica_sets,
                error_rates: &[],
            },
            now(),
        )
    }
}

fn draw(w: u16, h: u16, widget: impl Widget) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    terminal
        .draw(|f| f.render_widget(widget, f.area()))
        .expect("draw");
    terminal.backend().buffer().clone()
}

fn fresh() -> Freshness {
    Freshness {
        age: Some(Duration::from_secs(3)),
        stale: false,
    }
}

/// Foreground of `needle` on the first screen line that contains `row` and `needle`.
fn fg_in_row(buf: &Buffer, row: &str, needle: &str) -> Color {
    let lines = rows(buf);
    let y = lines
        .iter()
        .position(|l| l.contains(row) && l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {row:?} and {needle:?}:\n{}", lines.join("\n")));
    let cells: Vec<&str> = (0..buf.area.width)
        .map(|x| buf[(x, y as u16)].symbol())
        .collect();
    let x = (0..cells.len())
        .find(|&x| cells[x..].concat().starts_with(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", lines[y]));
    buf[(x as u16, y as u16)].fg
}

fn title_fg(buf: &Buffer, label: &str) -> Color {
    let (x, y) = find(buf, &format!(" {label} ")).expect("health label in the title");
    assert_eq!(y, 0, "the health label sits in the title");
    buf[(x + 1, y)].fg
}

fn colour(h: Health) -> Color {
    match h {
        Health::Ok => Color::Green,
        Health::Warn => Color::Yellow,
        Health::Crit => Color::Red,
        Health::Unknown => Color::Magenta,
    }
}

// ---------------------------------------------------------------- Ceph

#[test]
fn ceph_pane_in_every_scenario() {
    for scenario in SCENARIOS {
        let world = World::new(scenario);
        let view = world.ceph();
        for (w, h) in SIZES {
            let cursor = PaneCursor::default();
            let buf = draw(
                w,
                h,
                CephPane {
                    view: &view,
                    theme: &theme("default"),
                    cursor: &cursor,
                    freshness: fresh(),
                },
            );
            let screen = text(&buf);
            let ctx = format!("{scenario:?} {w}x{h}\n{screen}");
            assert!(screen.contains("Ceph"), "{ctx}");
            assert!(screen.contains("updated 3s ago"), "{ctx}");
            assert!(screen.contains("38% used"), "{ctx}");
            assert_eq!(
                title_fg(&buf, view.health().label()),
                colour(view.health()),
                "{ctx}"
            );
            match scenario {
                Scenario::CephDegraded => {
                    assert_eq!(view.health(), Health::Warn);
                    assert_eq!(fg_of(&buf, "HEALTH_WARN"), Color::Yellow, "{ctx}");
                    assert_eq!(
                        fg_in_row(&buf, "OSD_DOWN", "HEALTH_WARN"),
                        Color::Yellow,
                        "{ctx}"
                    );
                    assert!(screen.contains("1 osds down"), "{ctx}");
                    assert!(screen.contains("PG_DEGRADED"), "{ctx}");
                    assert_eq!(fg_in_row(&buf, "OSD_DOWN", "!"), Color::Yellow, "{ctx}");
                    assert_eq!(fg_of(&buf, "3/3"), Color::Green, "mons all in: {ctx}");
                }
                Scenario::AzFailure => {
                    assert_eq!(view.health(), Health::Warn);
                    assert!(screen.contains("MON_DOWN"), "{ctx}");
                    assert_eq!(fg_of(&buf, "2/3"), Color::Yellow, "{ctx}");
                    assert_eq!(fg_of(&buf, "c OUT"), Color::Red, "{ctx}");
                    assert!(screen.contains("OSD_ZONE_DOWN"), "{ctx}");
                }
                _ => {
                    assert_eq!(view.health(), Health::Ok, "{ctx}");
                    assert_eq!(fg_of(&buf, "HEALTH_OK"), Color::Green, "{ctx}");
                    assert!(screen.contains("no health checks raised"), "{ctx}");
                    assert_eq!(fg_of(&buf, "3/3"), Color::Green, "{ctx}");
                    assert!(
                        screen.contains("conditions: Ready True ClusterCreated"),
                        "{ctx}"
                    );
                }
            }
        }
    }
}

#[test]
fn ceph_detail_follows_the_selection_and_the_filter() {
    let view = World::new(Scenario::AzFailure).ceph();
    let names: Vec<&str> = view.clusters[0]
        .checks
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let cursor = PaneCursor {
        selected: 1,
        ..PaneCursor::default()
    };
    let buf = draw(
        80,
        24,
        CephPane {
            view: &view,
            theme: &theme("default"),
            cursor: &cursor,
            freshness: fresh(),
        },
    );
    let screen = text(&buf);
    // The detail shows the selected check's name with its cluster.
    assert!(
        screen.contains(&format!("{} HEALTH_WARN rook-ceph/rook-ceph", names[1])),
        "{screen}"
    );
    let (x, y) = find(&buf, &format!(" {} ", names[1])).expect("selected row");
    assert_eq!(
        buf[(x + 1, y)].bg,
        Color::Cyan,
        "selected row focused: {screen}"
    );
    let mut cursor = PaneCursor::default();
    cursor.set_filter(Some("zone".into()));
    let buf = draw(
        80,
        24,
        CephPane {
            view: &view,
            theme: &theme("default"),
            cursor: &cursor,
            freshness: fresh(),
        },
    );
    let screen = text(&buf);
    assert!(
        screen.contains("OSD_ZONE_DOWN") && !screen.contains("PG_DEGRADED"),
        "{screen}"
    );
    assert!(
        screen.contains("/zone"),
        "filter shown in the title: {screen}"
    );
}

#[test]
fn ceph_absent_and_stale() {
    let view = ceph::derive(&[], None, now());
    let cursor = PaneCursor::default();
    let stale = Freshness {
        age: Some(Duration::from_secs(600)),
        stale: true,
    };
    let buf = draw(
        80,
        24,
        CephPane {
            view: &view,
            theme: &theme("default"),
            cursor: &cursor,
            freshness: stale,
        },
    );
    let screen = text(&buf);
    assert!(screen.contains("No CephCluster found"), "{screen}");
    assert!(screen.contains("STALE: updated 10m ago"), "{screen}");
    assert_eq!(fg_of(&buf, "STALE"), Color::Yellow);
    assert_eq!(title_fg(&buf, "UNKNOWN"), Color::Magenta);
}

// ---------------------------------------------------------------- Velero

#[test]
fn velero_pane_in_every_scenario() {
    for scenario in SCENARIOS {
        let view = World::new(scenario).velero();
        for (w, h) in SIZES {
            let cursor = PaneCursor::default();
            let buf = draw(
                w,
                h,
                VeleroPane {
                    view: &view,
                    theme: &theme("default"),
                    cursor: &cursor,
                    freshness: fresh(),
                },
            );
            let screen = text(&buf);
            let ctx = format!("{scenario:?} {w}x{h}\n{screen}");
            assert!(
                screen.contains("daily-backup") && screen.contains("0 2 * * *"),
                "{ctx}"
            );
            assert!(screen.contains("in 16h"), "next run tomorrow 02:00: {ctx}");
            assert!(screen.contains("26h"), "RPO shown: {ctx}");
            assert_eq!(
                fg_in_row(&buf, "default", "Available"),
                Color::Green,
                "{ctx}"
            );
            assert_eq!(
                fg_in_row(&buf, "dr-region", "Available"),
                Color::Green,
                "{ctx}"
            );
            assert_eq!(
                title_fg(&buf, view.health().label()),
                colour(view.health()),
                "{ctx}"
            );
            if scenario == Scenario::BackupStale {
                assert_eq!(view.health(), Health::Crit);
                assert_eq!(fg_in_row(&buf, "0 2 * * *", "3d ago"), Color::Red, "{ctx}");
                assert_eq!(
                    fg_in_row(&buf, "daily-backup-2026031002", "Failed"),
                    Color::Red,
                    "{ctx}"
                );
                assert!(
                    screen.contains("CRIT  Velero schedule daily-backup: last good"),
                    "{ctx}"
                );
                assert!(
                    screen.contains("found a backup with status"),
                    "detail of the newest: {ctx}"
                );
                assert!(screen.contains("3 failed"), "{ctx}");
            } else {
                assert_eq!(view.health(), Health::Ok, "{ctx}");
                assert!(screen.contains("last good 7h ago"), "{ctx}");
                assert_eq!(
                    fg_in_row(&buf, "0 2 * * *", "7h ago"),
                    Color::Green,
                    "{ctx}"
                );
                assert_eq!(
                    fg_in_row(&buf, "daily-backup-2026031002", "Completed"),
                    Color::Green,
                    "{ctx}"
                );
                assert_eq!(fg_of(&buf, "PartiallyFailed"), Color::Yellow, "{ctx}");
                assert!(
                    !screen.contains("CRIT") && !screen.contains("WARN  "),
                    "{ctx}"
                );
            }
            if w >= 120 {
                assert!(
                    screen.contains("acme-velero-eu-central-1"),
                    "bucket column: {ctx}"
                );
            }
        }
    }
}

#[test]
fn velero_filter_selection_and_partial_failure_detail() {
    let view = World::new(Scenario::Healthy).velero();
    let mut cursor = PaneCursor::default();
    cursor.set_filter(Some("partially".into()));
    let buf = draw(
        80,
        24,
        VeleroPane {
            view: &view,
            theme: &theme("default"),
            cursor: &cursor,
            freshness: fresh(),
        },
    );
    let screen = text(&buf);
    let backup_rows = rows(&buf)
        .iter()
        .filter(|r| r.contains("daily-backup-2026"))
        .count();
    assert_eq!(
        backup_rows, 3,
        "its row, the detail and the logs hint: {screen}"
    );
    assert!(
        screen.contains("2 errors, 7 warnings: velero backup logs daily-backup-"),
        "{screen}"
    );
    assert!(screen.contains("5/6 snapshots"), "{screen}");
    assert_eq!(
        fg_in_row(&buf, "PartiallyFailed 4d", "2   7"),
        Color::Red,
        "errors count"
    );
    assert_eq!(
        fg_in_row(&buf, "PartiallyFailed 4d", "7 "),
        Color::Yellow,
        "warnings count"
    );
}

#[test]
fn velero_absent() {
    if std::env::var_os("CR_PANES_SHOW").is_some() {
        show();
    }
    let view = velero::derive(&VeleroObjects::default(), &VeleroSettings::default(), now());
    let cursor = PaneCursor::default();
    let buf = draw(
        80,
        24,
        VeleroPane {
            view: &view,
            theme: &theme("default"),
            cursor: &cursor,
            freshness: Freshness::default(),
        },
    );
    assert!(text(&buf).contains("No Velero schedules, backups or storage locations found."));
}

// ---------------------------------------------------------------- Rollouts

#[test]
fn rollouts_pane_in_every_scenario() {
    for scenario in SCENARIOS {
        let view = World::new(scenario).rollouts();
        for (w, h) in SIZES {
            let cursor = PaneCursor::default();
            let buf = draw(
                w,
                h,
                RolloutsPane {
                    view: &view,
                    theme: &theme("default"),
                    cursor: &cursor,
                    freshness: fresh(),
                },
            );
            let screen = text(&buf);
            let ctx = format!("{scenario:?} {w}x{h}\n{screen}");
            assert!(screen.contains("shop/checkout"), "{ctx}");
            assert_eq!(
                fg_in_row(&buf, "shop/checkout", "Paused"),
                Color::Green,
                "{ctx}"
            );
            assert!(
                fg_in_row(&buf, "shop/checkout", "3/7") != Color::Red,
                "{ctx}"
            );
            assert!(screen.contains("weight set 25% actual"), "{ctx}");
            assert!(
                screen.contains("success-rate Running"),
                "metric line: {ctx}"
            );
            // currentStepIndex 3: the indefinite pause after setWeight 25.
            let (x, y) = find(&buf, "pause (until promoted)").expect("current step");
            assert_eq!(buf[(x, y)].bg, Color::Cyan, "current step marked: {ctx}");
            assert_eq!(
                title_fg(&buf, view.health().label()),
                colour(view.health()),
                "{ctx}"
            );
            if scenario == Scenario::CanaryBad {
                assert_eq!(view.health(), Health::Warn);
                assert_eq!(
                    fg_in_row(&buf, "shop/checkout", "Running"),
                    Color::Yellow,
                    "{ctx}"
                );
                assert!(screen.contains("3 failed"), "{ctx}");
                assert_eq!(fg_of(&buf, "3 failed"), Color::Yellow, "{ctx}");
                assert!(screen.contains("WARN  Analysis checkout-"), "{ctx}");
            } else {
                assert_eq!(view.health(), Health::Ok, "{ctx}");
                assert_eq!(
                    fg_in_row(&buf, "shop/checkout", "Running"),
                    Color::Green,
                    "{ctx}"
                );
                assert!(screen.contains("0 failed"), "{ctx}");
            }
            if scenario == Scenario::AzFailure {
                let r = &view.rollouts[0];
                let avail = format!("{}/{}", r.available.unwrap_or(0), r.desired.unwrap_or(0));
                assert_eq!(
                    fg_in_row(&buf, "shop/checkout", &avail),
                    Color::Yellow,
                    "{ctx}"
                );
            }
            if w >= 120 {
                assert!(
                    screen.contains("Canary") && screen.contains("CanaryPauseStep"),
                    "{ctx}"
                );
            }
        }
    }
}

#[test]
fn rollouts_absent_and_filtered_out() {
    let view = rollouts::derive(&[], &[], now());
    let cursor = PaneCursor::default();
    let buf = draw(
        80,
        24,
        RolloutsPane {
            view: &view,
            theme: &theme("default"),
            cursor: &cursor,
            freshness: fresh(),
        },
    );
    assert!(text(&buf).contains("No Argo Rollouts found"));
    let view = World::new(Scenario::Healthy).rollouts();
    let mut cursor = PaneCursor::default();
    cursor.set_filter(Some("nothing-like-this".into()));
    let buf = draw(
        80,
        24,
        RolloutsPane {
            view: &view,
            theme: &theme("default"),
            cursor: &cursor,
            freshness: fresh(),
        },
    );
    assert!(text(&buf).contains("no rollout matches the filter"));
}

// ---------------------------------------------------------------- tiles, themes, reports

#[test]
fn tile_bodies_carry_the_health_colours() {
    let tile = |lines: Vec<Line<'static>>| draw(26, 6, Paragraph::new(lines));
    let ok = World::new(Scenario::Healthy);
    let buf = tile(ceph_tile(&ok.ceph(), &theme("default")));
    assert_eq!(fg_of(&buf, "HEALTH_OK"), Color::Green);
    let buf = tile(velero_tile(&ok.velero(), &theme("default")));
    assert_eq!(fg_of(&buf, "last good 7h ago"), Color::Green);
    let buf = tile(rollouts_tile(&ok.rollouts(), &theme("default")));
    assert_eq!(fg_of(&buf, "checkout Paused 3/7"), Color::Green);
    assert!(text(&buf).contains("canary 25/"));

    let buf = tile(ceph_tile(
        &World::new(Scenario::CephDegraded).ceph(),
        &theme("default"),
    ));
    assert_eq!(fg_of(&buf, "HEALTH_WARN"), Color::Yellow);
    let buf = tile(velero_tile(
        &World::new(Scenario::BackupStale).velero(),
        &theme("default"),
    ));
    assert_eq!(
        fg_of(&buf, "last good 3d ago"),
        Color::Red,
        "{}",
        text(&buf)
    );
    assert_eq!(fg_of(&buf, "3 failed since"), Color::Yellow);
    let buf = tile(rollouts_tile(
        &World::new(Scenario::CanaryBad).rollouts(),
        &theme("default"),
    ));
    assert_eq!(fg_of(&buf, "analysis Running"), Color::Yellow);
}

#[test]
fn mono_theme_keeps_the_words_without_colour() {
    let cursor = PaneCursor::default();
    for scenario in [
        Scenario::CephDegraded,
        Scenario::BackupStale,
        Scenario::CanaryBad,
    ] {
        let world = World::new(scenario);
        let (c, v, r) = (world.ceph(), world.velero(), world.rollouts());
        let mono = theme("mono");
        let bufs = [
            draw(
                80,
                24,
                CephPane {
                    view: &c,
                    theme: &mono,
                    cursor: &cursor,
                    freshness: fresh(),
                },
            ),
            draw(
                80,
                24,
                VeleroPane {
                    view: &v,
                    theme: &mono,
                    cursor: &cursor,
                    freshness: fresh(),
                },
            ),
            draw(
                80,
                24,
                RolloutsPane {
                    view: &r,
                    theme: &mono,
                    cursor: &cursor,
                    freshness: fresh(),
                },
            ),
        ];
        for buf in &bufs {
            for cell in buf.content() {
                assert_eq!(cell.fg, Color::Reset, "{}", text(buf));
            }
        }
        let (pane, word) = match scenario {
            Scenario::CephDegraded => (0, "HEALTH_WARN"),
            Scenario::BackupStale => (1, "Failed"),
            _ => (2, "3 failed"),
        };
        assert!(text(&bufs[pane]).contains(word), "{}", text(&bufs[pane]));
    }
}

/// What `kha status --json` will carry per scenario.
#[test]
fn status_reports_per_scenario() {
    for scenario in SCENARIOS {
        let world = World::new(scenario);
        let ceph = serde_json::to_value(CephReport::from_view(&world.ceph())).expect("json");
        let velero = serde_json::to_value(VeleroReport::from_view(&world.velero())).expect("json");
        let rollouts =
            serde_json::to_value(RolloutsReport::from_view(&world.rollouts())).expect("json");
        let messages = |r: &serde_json::Value| -> Vec<String> {
            r["findings"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|f| f["message"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let expect = match scenario {
            Scenario::Healthy => ["ok", "ok", "ok"],
            Scenario::CephDegraded => ["warn", "ok", "ok"],
            Scenario::BackupStale => ["ok", "crit", "ok"],
            Scenario::CanaryBad => ["ok", "ok", "warn"],
            Scenario::AzFailure => ["warn", "ok", "ok"],
            _ => unreachable!(),
        };
        let ctx = format!(
            "{scenario:?}: {:?} {:?} {:?}",
            messages(&ceph),
            messages(&velero),
            messages(&rollouts)
        );
        assert_eq!(
            [&ceph["status"], &velero["status"], &rollouts["status"]],
            expect,
            "{ctx}"
        );
        for r in [&ceph, &velero, &rollouts] {
            assert_eq!(r["present"], true, "{ctx}");
            assert_eq!(
                r["findings"].as_array().map(Vec::len) == Some(0),
                r["status"] == "ok",
                "{ctx}"
            );
        }
        match scenario {
            Scenario::CephDegraded => {
                assert!(
                    messages(&ceph).contains(&"Ceph OSD_DOWN: 1 osds down".to_string()),
                    "{ctx}"
                )
            }
            Scenario::AzFailure => {
                assert!(
                    messages(&ceph)
                        .iter()
                        .any(|m| m.starts_with("Ceph MON_DOWN: 1/3 mons down")),
                    "{ctx}"
                );
                assert_eq!(ceph["clusters"][0]["mons_in_quorum"], 2, "{ctx}");
            }
            Scenario::BackupStale => {
                let m = messages(&velero);
                assert!(
                    m.iter().any(|m| m.contains("older than the RPO of 26h")),
                    "{ctx}"
                );
                assert!(
                    m.iter()
                        .any(|m| m.contains("3 backups failed since the last good one")),
                    "{ctx}"
                );
            }
            Scenario::CanaryBad => {
                assert!(
                    messages(&rollouts)
                        .iter()
                        .any(|m| m.contains("3 of 5 measurements failed (limit 3)")),
                    "{ctx}"
                );
            }
            _ => {}
        }
    }
}

/// `CR_PANES_SHOW=1 cargo test --test cr_panes velero_absent -- --nocapture` prints
/// every pane at 80x24 for a look.
fn show() {
    let cursor = PaneCursor::default();
    for scenario in SCENARIOS {
        let w = World::new(scenario);
        let (c, v, r) = (w.ceph(), w.velero(), w.rollouts());
        let t = theme("default");
        for buf in [
            draw(
                80,
                24,
                CephPane {
                    view: &c,
                    theme: &t,
                    cursor: &cursor,
                    freshness: fresh(),
                },
            ),
            draw(
                80,
                24,
                VeleroPane {
                    view: &v,
                    theme: &t,
                    cursor: &cursor,
                    freshness: fresh(),
                },
            ),
            draw(
                80,
                24,
                RolloutsPane {
                    view: &r,
                    theme: &t,
                    cursor: &cursor,
                    freshness: fresh(),
                },
            ),
        ] {
            println!("{scenario:?}\n{}", text(&buf));
        }
    }
}
