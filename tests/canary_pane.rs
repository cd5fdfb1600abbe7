//! The abort advisory on the Rollouts pane, from the lab's canary-bad rollout and a
//! canary error-rate observation: at 80x24 and 160x48 the call and its evidence (value,
//! threshold, time, query) show, in the critical colour; below the threshold, or with
//! the query failing, there is none; the monochrome theme keeps the words.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{fg_of, text};
use kha::config::theme::Theme;
use kha::lab::topology::{Faults, LabSpec, Scenario, Topology};
use kha::model::canary::{CanaryObservation, SeriesValue, advise, error_rates};
use kha::model::rollouts::{self, RolloutSources, RolloutsView};
use kha::ui::ceph::parts::{Freshness, PaneCursor};
use kha::ui::rollouts::RolloutsPane;
use kube::api::DynamicObject;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_107_200)
}

fn lab_rollouts() -> (Vec<DynamicObject>, Vec<DynamicObject>) {
    let spec = LabSpec {
        scenario: Scenario::CanaryBad,
        ..LabSpec::default()
    };
    let topo = Topology::generate(&spec);
    let faults = Faults::for_scenario(Scenario::CanaryBad, &topo);
    let objects = kha::lab::world::objects(&topo, &spec, &faults, now());
    let kind = |k: &str| -> Vec<DynamicObject> {
        objects
            .iter()
            .filter(|o| o["kind"] == k)
            .map(|o| serde_json::from_value(o.clone()).expect("a DynamicObject"))
            .collect()
    };
    (kind("Rollout"), kind("AnalysisRun"))
}

fn observation(rate: Result<f64, &str>) -> CanaryObservation {
    let series = |svc: &str, v: f64| SeriesValue {
        labels: BTreeMap::from([
            ("destination_service_namespace".into(), "shop".into()),
            ("destination_service_name".into(), svc.into()),
        ]),
        value: v,
    };
    CanaryObservation {
        observed_at: now(),
        query: "sum by (destination_service_namespace, destination_service_name) (rate(istio_requests_total{response_code=~\"5..\"}[5m])) / sum by (destination_service_namespace, destination_service_name) (rate(istio_requests_total[5m]))".into(),
        threshold: 0.05,
        result: rate
            .map(|r| vec![series("checkout", 0.003), series("checkout-canary", r)])
            .map_err(String::from),
    }
}

fn view(obs: &CanaryObservation) -> RolloutsView {
    let (ros, runs) = lab_rollouts();
    let rates = error_rates(&ros, obs);
    let mut v = rollouts::derive_with(
        &RolloutSources {
            rollouts: &ros,
            analysis_runs: &runs,
            replica_sets: &[],
            error_rates: &rates,
        },
        now(),
    );
    advise(&mut v, &ros, Some(obs));
    v
}

fn draw(w: u16, h: u16, view: &RolloutsView, theme: &str) -> Buffer {
    let theme = Theme::shipped(theme).expect("shipped theme");
    let cursor = PaneCursor::default();
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    terminal
        .draw(|f| {
            f.render_widget(
                RolloutsPane {
                    view,
                    theme: &theme,
                    cursor: &cursor,
                    freshness: Freshness {
                        age: Some(Duration::from_secs(2)),
                        stale: false,
                    },
                },
                f.area(),
            )
        })
        .expect("draw");
    terminal.backend().buffer().clone()
}

#[test]
fn the_advisory_shows_its_evidence_in_the_critical_colour() {
    let v = view(&observation(Ok(0.081)));
    for (w, h) in [(80, 24), (160, 48)] {
        let buf = draw(w, h, &v, "default");
        let screen = text(&buf);
        assert!(screen.contains("ABORT ADVISED"), "{w}x{h}:\n{screen}");
        assert!(
            screen.contains("canary 5xx 8.1 % > 5 %"),
            "{w}x{h}:\n{screen}"
        );
        assert!(
            screen.contains("measured 2026-12-01T06:40:00Z"),
            "{w}x{h}:\n{screen}"
        );
        assert!(
            screen.contains("istio_requests_total"),
            "{w}x{h}:\n{screen}"
        );
        assert_eq!(fg_of(&buf, "ABORT ADVISED"), Color::Red, "{w}x{h}");
    }
    let mono = draw(80, 24, &v, "mono");
    assert!(text(&mono).contains("ABORT ADVISED"), "{}", text(&mono));
    assert!(
        v.findings[0].message.contains("abort advised"),
        "{:?}",
        v.findings
    );
}

#[test]
fn the_home_tile_says_abort_advised() {
    let v = view(&observation(Ok(0.081)));
    let theme = Theme::shipped("default").expect("theme");
    let mut terminal = Terminal::new(TestBackend::new(40, 6)).expect("terminal");
    terminal
        .draw(|f| {
            f.render_widget(
                ratatui::widgets::Paragraph::new(kha::ui::rollouts::tile_lines(&v, &theme)),
                f.area(),
            )
        })
        .expect("draw");
    let buf = terminal.backend().buffer().clone();
    assert!(
        text(&buf).contains("ABORT ADVISED: canary 5xx 8.1 %"),
        "{}",
        text(&buf)
    );
    assert_eq!(fg_of(&buf, "ABORT ADVISED"), Color::Red);
}

#[test]
fn no_advisory_below_the_threshold_or_without_a_measurement() {
    for obs in [observation(Ok(0.004)), observation(Err("query timed out"))] {
        let v = view(&obs);
        assert!(v.rollouts[0].abort_advisory.is_none());
        let screen = text(&draw(80, 24, &v, "default"));
        assert!(!screen.contains("ABORT ADVISED"), "{screen}");
        assert!(screen.contains("shop/checkout"), "{screen}");
    }
}
