//! The runbook engine: refuses in read-only mode or when preconditions are unmet, asks
//! for the confirmation the risk needs (`y`, or the cluster name typed), then runs step
//! by step — execute, verify until the step's timeout — and on failure asks whether to
//! retry, skip (only where safe) or abort. Every event goes to the audit log before the
//! next thing happens, which is also what lets an interrupted run resume.

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, eyre};

use super::audit::{self, AuditEvent, AuditLog, AuditRecord};
use super::exec::{Executor, StepOutput};
use super::{Risk, Runbook, Step};

/// What the operator decides after a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry,
    Skip,
    Abort,
}

/// Live progress, for the CLI's output or the TUI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    StepStarted {
        step: usize,
        title: String,
        operation: String,
    },
    StepOutput {
        step: usize,
        output: StepOutput,
    },
    Verifying {
        step: usize,
        what: String,
    },
    StepDone {
        step: usize,
        result: String,
    },
    StepFailed {
        step: usize,
        error: String,
        guidance: String,
    },
    StepSkipped {
        step: usize,
    },
}

/// The human at the keyboard (a terminal prompt, the TUI, or preset answers).
pub trait Operator {
    /// Shows `prompt` and returns what was typed.
    fn ask(&mut self, prompt: &str) -> String;
    fn decide(&mut self, step: usize, error: &str, skippable: bool) -> Decision;
    fn progress(&mut self, event: Progress);
    /// Whether the engineer asked to stop; checked between steps.
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub run: String,
    pub completed: usize,
    pub skipped: Vec<usize>,
}

pub struct Engine<E> {
    pub executor: E,
    pub audit: AuditLog,
    pub read_only: bool,
    /// Pause between verification attempts.
    pub poll: Duration,
    /// The Kubernetes identity, when known (for the audit records).
    pub kube_user: Option<String>,
    /// The findings on screen when the runbook was chosen ("WARN etcd: ..."), recorded
    /// first so the incident timeline shows what was seen before what was done.
    pub seen: Vec<String>,
}

/// One audit event of a run, before the common fields are added.
struct Entry {
    event: AuditEvent,
    step: Option<usize>,
    title: Option<String>,
    operation: Option<String>,
    result: Option<String>,
    duration: Option<Duration>,
}

/// Where an interrupted run of a runbook stopped: its id and the next step (1-based).
pub fn resume_point(
    log: &AuditLog,
    runbook: &str,
    cluster: &str,
) -> Result<Option<(String, usize)>> {
    let (records, _) = log.read()?;
    let Some(last) = records
        .iter()
        .rev()
        .find(|r| r.runbook == runbook && r.cluster == cluster)
    else {
        return Ok(None);
    };
    let run = &last.run;
    let of_run: Vec<&AuditRecord> = records.iter().filter(|r| &r.run == run).collect();
    if of_run
        .iter()
        .any(|r| matches!(r.event, AuditEvent::Finished | AuditEvent::Refused))
    {
        return Ok(None);
    }
    if !of_run.iter().any(|r| r.event == AuditEvent::Confirmed) {
        return Ok(None);
    }
    let done = of_run
        .iter()
        .filter(|r| matches!(r.event, AuditEvent::StepSucceeded | AuditEvent::StepSkipped))
        .filter_map(|r| r.step)
        .max()
        .unwrap_or(0);
    Ok(Some((run.clone(), done + 1)))
}

impl<E: Executor> Engine<E> {
    fn record(&self, rb: &Runbook, run: &str, entry: Entry) -> Result<()> {
        let Entry {
            event,
            step,
            title,
            operation,
            result,
            duration,
        } = entry;
        self.audit.append(&AuditRecord {
            at: audit::now_rfc3339(),
            run: run.to_string(),
            os_user: audit::os_user(),
            kube_user: self.kube_user.clone(),
            cluster: rb.cluster.clone(),
            runbook: rb.id.clone(),
            event,
            step,
            title,
            operation: operation.map(|o| audit::redact(&o)),
            result: result.map(|r| audit::redact(&r)),
            duration_ms: duration.map(|d| d.as_millis() as u64),
        })
    }

    fn refuse(&self, rb: &Runbook, run: &str, why: String) -> color_eyre::Report {
        if let Err(e) = self.record(
            rb,
            run,
            Entry {
                event: AuditEvent::Refused,
                step: None,
                title: None,
                operation: None,
                result: Some(why.clone()),
                duration: None,
            },
        ) {
            return e.wrap_err(why);
        }
        eyre!(why)
    }

    /// Runs `rb` from its first step, or resumes run `resume` from step `from`
    /// (1-based; the confirmation is asked again).
    pub async fn run(
        &mut self,
        rb: &Runbook,
        op: &mut dyn Operator,
        resume: Option<(String, usize)>,
    ) -> Result<RunReport> {
        let resuming = resume.is_some();
        let (run, from) = resume.unwrap_or_else(|| (audit::new_run_id(), 1));
        for finding in std::mem::take(&mut self.seen) {
            self.record(
                rb,
                &run,
                Entry {
                    event: AuditEvent::FindingSeen,
                    step: None,
                    title: None,
                    operation: None,
                    result: Some(finding),
                    duration: None,
                },
            )?;
        }
        if resuming && let Some(why) = self.plan_changed(rb, &run)? {
            return Err(self.refuse(rb, &run, why));
        }
        if self.read_only {
            return Err(self.refuse(
                rb,
                &run,
                "read-only: kha refuses every runbook (drop --read-only / read_only in the profile to act)".into(),
            ));
        }
        let unmet = rb.unmet();
        if !unmet.is_empty() {
            let list: Vec<String> = unmet
                .iter()
                .map(|p| format!("{} ({})", p.description, p.evidence))
                .collect();
            return Err(self.refuse(
                rb,
                &run,
                format!("preconditions not met: {}", list.join("; ")),
            ));
        }
        match rb.risk() {
            Risk::Safe => {}
            Risk::Disruptive => {
                let answer = op.ask(&format!("Run \"{}\" on {}? [y/N]", rb.title, rb.cluster));
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    return Err(self.refuse(rb, &run, "not confirmed".into()));
                }
            }
            Risk::Destructive => {
                let answer = op.ask(&format!(
                    "\"{}\" is destructive. Type the cluster name ({}) to run it:",
                    rb.title, rb.cluster
                ));
                if answer.trim() != rb.cluster {
                    return Err(self.refuse(
                        rb,
                        &run,
                        format!(
                            "confirmation did not match the cluster name {:?}",
                            rb.cluster
                        ),
                    ));
                }
            }
        }
        self.record(
            rb,
            &run,
            Entry {
                event: AuditEvent::Confirmed,
                step: None,
                title: None,
                operation: None,
                result: None,
                duration: None,
            },
        )?;
        let mut skipped = Vec::new();
        let mut completed = from.saturating_sub(1);
        for (i, step) in rb.steps.iter().enumerate().skip(from.saturating_sub(1)) {
            let n = i + 1;
            if op.cancelled() {
                let why = format!("cancelled by the engineer before step {n}");
                self.record(
                    rb,
                    &run,
                    Entry {
                        event: AuditEvent::Aborted,
                        step: Some(n),
                        title: None,
                        operation: None,
                        result: Some(why.clone()),
                        duration: None,
                    },
                )?;
                return Err(eyre!("{why}. Resume with --resume to go on."));
            }
            loop {
                match self.attempt(rb, &run, n, step, op).await? {
                    None => {
                        completed = n;
                        break;
                    }
                    Some(error) => match op.decide(n, &error, step.skippable) {
                        Decision::Retry => continue,
                        Decision::Skip if step.skippable => {
                            self.record(
                                rb,
                                &run,
                                Entry {
                                    event: AuditEvent::StepSkipped,
                                    step: Some(n),
                                    title: Some(step.title.clone()),
                                    operation: None,
                                    result: None,
                                    duration: None,
                                },
                            )?;
                            op.progress(Progress::StepSkipped { step: n });
                            skipped.push(n);
                            break;
                        }
                        Decision::Skip | Decision::Abort => {
                            self.record(
                                rb,
                                &run,
                                Entry {
                                    event: AuditEvent::Aborted,
                                    step: Some(n),
                                    title: None,
                                    operation: None,
                                    result: Some(error.clone()),
                                    duration: None,
                                },
                            )?;
                            return Err(eyre!(
                                "aborted at step {n} ({}): {error}. Resume with --resume once fixed.",
                                step.title
                            ));
                        }
                    },
                }
            }
        }
        self.record(
            rb,
            &run,
            Entry {
                event: AuditEvent::Finished,
                step: None,
                title: None,
                operation: None,
                result: None,
                duration: None,
            },
        )?;
        Ok(RunReport {
            run,
            completed,
            skipped,
        })
    }

    /// Why the plan cannot resume run `run`: a step it completed has another title now
    /// (the plan was made from a different cluster state).
    fn plan_changed(&self, rb: &Runbook, run: &str) -> Result<Option<String>> {
        let (records, _) = self.audit.read()?;
        for r in records.iter().filter(|r| r.run == run) {
            let (Some(n), Some(title)) = (r.step, &r.title) else {
                continue;
            };
            let now = rb.steps.get(n.saturating_sub(1)).map(|s| s.title.as_str());
            if now != Some(title.as_str()) {
                return Ok(Some(format!(
                    "the plan changed since run {run}: step {n} was \"{title}\", now \"{}\"; \
                     check the cluster and start a new run without --resume",
                    now.unwrap_or("(none)")
                )));
            }
        }
        Ok(None)
    }

    /// One try at a step: `None` when it ran and verified, else the error.
    async fn attempt(
        &mut self,
        rb: &Runbook,
        run: &str,
        n: usize,
        step: &Step,
        op: &mut dyn Operator,
    ) -> Result<Option<String>> {
        let operation = step.operation.describe();
        self.record(
            rb,
            run,
            Entry {
                event: AuditEvent::StepStarted,
                step: Some(n),
                title: Some(step.title.clone()),
                operation: Some(operation.clone()),
                result: None,
                duration: None,
            },
        )?;
        op.progress(Progress::StepStarted {
            step: n,
            title: step.title.clone(),
            operation: operation.clone(),
        });
        let started = Instant::now();
        let outcome = match self.executor.execute(&step.operation).await {
            Ok(output) => {
                op.progress(Progress::StepOutput {
                    step: n,
                    output: output.clone(),
                });
                op.progress(Progress::Verifying {
                    step: n,
                    what: step.verification.describe(),
                });
                self.verify(step).await.map(|v| {
                    let mut result = output.summary;
                    for line in &output.lines {
                        result.push_str("; ");
                        result.push_str(line);
                    }
                    format!("{result}; verified: {v}")
                })
            }
            Err(e) => Err(format!("{e:#}")),
        };
        match outcome {
            Ok(result) => {
                self.record(
                    rb,
                    run,
                    Entry {
                        event: AuditEvent::StepSucceeded,
                        step: Some(n),
                        title: Some(step.title.clone()),
                        operation: Some(operation),
                        result: Some(result.clone()),
                        duration: Some(started.elapsed()),
                    },
                )?;
                op.progress(Progress::StepDone { step: n, result });
                Ok(None)
            }
            Err(error) => {
                self.record(
                    rb,
                    run,
                    Entry {
                        event: AuditEvent::StepFailed,
                        step: Some(n),
                        title: Some(step.title.clone()),
                        operation: Some(operation),
                        result: Some(error.clone()),
                        duration: Some(started.elapsed()),
                    },
                )?;
                op.progress(Progress::StepFailed {
                    step: n,
                    error: error.clone(),
                    guidance: step.on_failure.clone(),
                });
                Ok(Some(error))
            }
        }
    }

    /// Polls the step's verification until it holds or the step's timeout passes.
    async fn verify(&mut self, step: &Step) -> std::result::Result<String, String> {
        let deadline = Instant::now() + step.timeout;
        loop {
            match self.executor.verify(&step.verification).await {
                Ok(v) => return Ok(v),
                // Failed for good (a Restore ended Failed): waiting will not help.
                Err(e) if e.downcast_ref::<super::exec_cr::Settled>().is_some() => {
                    return Err(format!("{e:#}"));
                }
                Err(e) if Instant::now() + self.poll >= deadline => {
                    return Err(format!(
                        "not verified within {} s: {e:#}",
                        step.timeout.as_secs()
                    ));
                }
                Err(_) => tokio::time::sleep(self.poll).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{Operation, Precondition, Verification};

    /// Fails the operation of step `fail_at` (1-based) while `failures` lasts.
    struct Flaky {
        fail_at: String,
        failures: usize,
        ran: Vec<String>,
    }

    impl Executor for Flaky {
        async fn execute(&mut self, op: &Operation) -> Result<StepOutput> {
            let d = op.describe();
            if d.contains(&self.fail_at) && self.failures > 0 {
                self.failures -= 1;
                return Err(eyre!("connection reset"));
            }
            self.ran.push(d);
            Ok(StepOutput::default())
        }

        async fn verify(&mut self, _: &Verification) -> Result<String> {
            Ok("ok".into())
        }
    }

    struct Answers {
        typed: &'static str,
        decision: Decision,
    }

    impl Operator for Answers {
        fn ask(&mut self, _: &str) -> String {
            self.typed.into()
        }
        fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
            self.decision
        }
        fn progress(&mut self, _: Progress) {}
    }

    fn runbook(risk: Risk) -> Runbook {
        let step = |m: &str| Step {
            title: format!("step on {m}"),
            explanation: String::new(),
            risk,
            operation: Operation::EtcdDefragment {
                endpoint: format!("http://{m}:2379"),
                member: m.into(),
            },
            verification: Verification::None,
            timeout: Duration::from_secs(1),
            on_failure: "retry".into(),
            skippable: false,
        };
        Runbook {
            id: "test.rolling".into(),
            title: "Rolling".into(),
            cluster: "prod".into(),
            summary: String::new(),
            preconditions: vec![Precondition {
                description: "ok".into(),
                met: true,
                evidence: "yes".into(),
            }],
            steps: vec![step("m1"), step("m2"), step("m3")],
        }
    }

    fn engine(dir: &std::path::Path, fail_at: &str) -> Engine<Flaky> {
        Engine {
            executor: Flaky {
                fail_at: fail_at.into(),
                failures: 1,
                ran: Vec::new(),
            },
            audit: AuditLog::in_dir(dir),
            read_only: false,
            poll: Duration::from_millis(10),
            kube_user: None,
            seen: Vec::new(),
        }
    }

    #[tokio::test]
    async fn an_aborted_run_resumes_at_the_failed_step() {
        let dir = tempfile::tempdir().unwrap();
        let rb = runbook(Risk::Disruptive);
        let mut e = engine(dir.path(), "m2");
        let mut abort = Answers {
            typed: "y",
            decision: Decision::Abort,
        };
        let err = e.run(&rb, &mut abort, None).await.unwrap_err();
        assert!(err.to_string().contains("aborted at step 2"), "{err}");
        assert_eq!(e.executor.ran.len(), 1);
        let (run, next) = resume_point(&e.audit, "test.rolling", "prod")
            .unwrap()
            .unwrap();
        assert_eq!(next, 2);
        let report = e
            .run(&rb, &mut abort, Some((run.clone(), next)))
            .await
            .unwrap();
        assert_eq!((report.run, report.completed), (run, 3));
        // m1 ran once, then m2 and m3 after the resume.
        assert_eq!(e.executor.ran.len(), 3);
        assert_eq!(
            resume_point(&e.audit, "test.rolling", "prod").unwrap(),
            None
        );

        // A plan whose completed steps differ cannot resume the run.
        e.executor.failures = 1;
        let err = e.run(&rb, &mut abort, None).await.unwrap_err();
        assert!(err.to_string().contains("aborted at step 2"));
        let point = resume_point(&e.audit, "test.rolling", "prod").unwrap();
        let mut changed = rb.clone();
        changed.steps[0].title = "something else".into();
        let err = e.run(&changed, &mut abort, point).await.unwrap_err();
        assert!(err.to_string().contains("the plan changed"), "{err}");
    }

    /// What a kha killed in step 2 leaves: confirmed, step 1 done, step 2 started and
    /// nothing after. Resuming starts at step 2 again.
    #[test]
    fn a_killed_run_resumes_at_the_step_it_was_in() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_dir(dir.path());
        let record = |event, step: Option<usize>| AuditRecord {
            at: audit::now_rfc3339(),
            run: "killed".into(),
            os_user: "oncall".into(),
            kube_user: None,
            cluster: "prod".into(),
            runbook: "test.rolling".into(),
            event,
            step,
            title: step.map(|n| format!("step on m{n}")),
            operation: None,
            result: None,
            duration_ms: None,
        };
        for (event, step) in [
            (AuditEvent::Confirmed, None),
            (AuditEvent::StepStarted, Some(1)),
            (AuditEvent::StepSucceeded, Some(1)),
            (AuditEvent::StepStarted, Some(2)),
        ] {
            log.append(&record(event, step)).unwrap();
        }
        assert_eq!(
            resume_point(&log, "test.rolling", "prod").unwrap(),
            Some(("killed".to_string(), 2))
        );
    }

    #[tokio::test]
    async fn destructive_plans_need_the_cluster_name_and_read_only_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let rb = runbook(Risk::Destructive);
        let mut e = engine(dir.path(), "never");
        let mut yes = Answers {
            typed: "y",
            decision: Decision::Abort,
        };
        assert!(e.run(&rb, &mut yes, None).await.is_err());
        assert!(e.executor.ran.is_empty());
        e.read_only = true;
        let mut named = Answers {
            typed: "prod",
            decision: Decision::Abort,
        };
        let err = e.run(&rb, &mut named, None).await.unwrap_err();
        assert!(err.to_string().contains("read-only"));
        assert!(e.executor.ran.is_empty());
        e.read_only = false;
        e.run(&rb, &mut named, None).await.unwrap();
        assert_eq!(e.executor.ran.len(), 3);
        let (records, _) = e.audit.read().unwrap();
        let refused = records
            .iter()
            .filter(|r| r.event == AuditEvent::Refused)
            .count();
        assert_eq!(refused, 2);
    }
}
