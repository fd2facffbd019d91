//! One derivation per render: everything a render derives from the store's snapshot, the
//! sources' readings and monitoring's board, computed once at one `now` and kept, owned, with
//! the exposition. The families, the page and JSON views and `check` (text and `--json`) read
//! a [`Derived`] and derive nothing of their own, so they cannot disagree:
//! - the watched PostgreSQL slots, their owners and the slot policy ([`crate::slots`]);
//! - each task's source and lag behind it;
//! - each task's outlook and cut-over verdict (from the running exporter's tracker; none in
//!   `check`, which reads once and has no rates to judge by);
//! - which monitoring samples are current ([`MonitorSnapshot`] decides);
//! - each task's deadlines, and whether its values are still fresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{ExpositionOptions, FinishedTasks};
use crate::deadlines::Deadline;
use crate::monitor::{MonitorSnapshot, TaskMonitor};
use crate::outlook::{Outlook, Tracker};
use crate::slots::Slot;
use crate::source::lag::{task_lag, LagProblem, MappedLag, SourceLags};
use crate::source::SourceSnapshot;
use crate::state::TaskState;

/// The sources' latest snapshots, by name.
pub type Sources = Arc<HashMap<String, Arc<SourceSnapshot>>>;

/// What one render knows and derived, at [`Derived::at`].
#[derive(Debug, Default)]
pub struct Derived {
    /// When, unix seconds: every fact here is as of this moment.
    pub at: f64,
    /// The store's task states (shared with the store, not copied), in account and id order.
    pub tasks: Vec<Arc<TaskState>>,
    /// The sources as they were read.
    pub sources: Sources,
    /// What monitoring knew.
    pub monitor: Arc<MonitorSnapshot>,
    /// The options in force.
    pub options: Arc<ExpositionOptions>,
    /// The PostgreSQL sources' watched slots, in source and slot order.
    pub slots: Vec<Slot>,
    /// Each task's source and lag, by task position; empty without `[[sources]]`.
    pub lags: SourceLags,
    /// Each task's outlook, by task position; empty outside a running exporter.
    pub outlooks: Vec<Outlook>,
    /// Each task's slot (a position in `slots`), by task position; empty without a
    /// PostgreSQL source.
    slot_of: Vec<Option<usize>>,
}

impl Derived {
    /// Derives everything of `tasks` at `at`; a running exporter's `tracker` (fed at the
    /// monotonic `now`) adds the outlooks.
    pub fn new(
        tasks: Vec<Arc<TaskState>>,
        sources: Sources,
        monitor: Arc<MonitorSnapshot>,
        options: Arc<ExpositionOptions>,
        at: f64,
        tracker: Option<(&mut Tracker, Instant)>,
    ) -> Self {
        let slots = crate::slots::watch(&tasks, &options.sources, &sources, at);
        let mut slot_of = Vec::new();
        if !slots.is_empty() {
            slot_of = vec![None; tasks.len()];
            for (position, slot) in slots.iter().enumerate() {
                if let Some(task) = slot.task {
                    slot_of[task] = Some(position);
                }
            }
        }
        let mut derived = Self {
            at,
            tasks,
            sources,
            monitor,
            options,
            slots,
            lags: Vec::new(),
            outlooks: Vec::new(),
            slot_of,
        };
        derived.lags = derived.source_lags();
        if let Some((tracker, now)) = tracker {
            derived.outlooks = tracker.observe(
                &derived.tasks,
                &derived.lags,
                &derived.sources,
                &derived.monitor,
                &derived.options,
                now,
                at,
            );
        }
        derived
    }

    /// The derivation of `tasks` alone: no source read, monitoring off, no tracker. What the
    /// fuzz targets and unit tests render.
    pub fn of_tasks(tasks: Vec<Arc<TaskState>>, options: Arc<ExpositionOptions>, at: f64) -> Self {
        Self::new(tasks, Sources::default(), Arc::default(), options, at, None)
    }

    /// The `i`th task's source and lag, when it is mapped to a source.
    pub fn lag(&self, i: usize) -> Option<&MappedLag> {
        self.lags.get(i)?.as_ref()
    }

    /// The `i`th task's outlook, in a running exporter.
    pub fn outlook(&self, i: usize) -> Option<&Outlook> {
        self.outlooks.get(i)
    }

    /// The `i`th task's watched slot, when it has one.
    pub fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots.get((*self.slot_of.get(i)?)?)
    }

    /// The `i`th task's monitoring samples that may be shown.
    pub fn monitor(&self, i: usize) -> Option<TaskMonitor> {
        let spec = &self.tasks.get(i)?.spec;
        self.monitor.current(&spec.account, &spec.id, self.at)
    }

    /// The `i`th task's deadlines, soonest first: UDTS's ([`crate::deadlines::deadlines`]) and
    /// its slot's invalidation.
    pub fn deadlines(&self, i: usize) -> Vec<Deadline> {
        let Some(task) = self.tasks.get(i) else {
            return Vec::new();
        };
        let mut deadlines = crate::deadlines::deadlines(task, self.at);
        if let Some(slot) = self.slot(i).and_then(Slot::deadline) {
            deadlines.push(slot);
            crate::deadlines::sort(&mut deadlines);
        }
        deadlines
    }

    /// Whether `task`'s values are still current: read within `poll.stale_after`. A stale
    /// task keeps only its up, info and timestamp series.
    pub fn fresh(&self, task: &TaskState) -> bool {
        self.options.stale_after.is_none_or(|stale| {
            task.last_success
                .is_some_and(|read| self.at - read <= stale.as_secs_f64())
        })
    }

    /// Whether `task` is finished and exposed lean (`metrics.finished_tasks = "lean"`): only
    /// what is still asked of it, until it runs again.
    pub fn lean(&self, task: &TaskState) -> bool {
        self.options.finished_tasks == FinishedTasks::Lean
            && task.status().is_some_and(crate::status::is_finished)
    }

    /// Whether `task` is paused (`Stopped`) and mapped to a `[[sources]]` database: its
    /// position still matters (the binlog purge alerts watch it), so it keeps its source
    /// families (lag, binlog position, applied bytes) even when exposed lean.
    pub fn paused_at_source(&self, task: &TaskState) -> bool {
        task.status() == Some(crate::status::STOPPED)
            && self.options.sources.source_of(&task.spec).is_some()
    }

    /// Each task's source and its lag behind it (or why there is none), in task order.
    fn source_lags(&self) -> SourceLags {
        let map = &self.options.sources;
        if map.is_empty() {
            return Vec::new();
        }
        // One shared name per source, not a string per task.
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut name_of = |source: &str| match names.iter().find(|n| &***n == source) {
            Some(name) => Arc::clone(name),
            None => {
                let name: Arc<str> = Arc::from(source);
                names.push(Arc::clone(&name));
                name
            }
        };
        self.tasks
            .iter()
            .enumerate()
            .map(|(i, task)| {
                let source = map.source_of(&task.spec)?;
                let snapshot = self.sources.get(source);
                let lag = if map.slot_rules(source).is_some() {
                    match (snapshot, self.slot(i)) {
                        (None, _) => Err(LagProblem::SourceUnread),
                        (Some(snapshot), _) if snapshot.wal.is_none() => {
                            Err(LagProblem::SourceUnread)
                        }
                        (Some(_), None) => Err(LagProblem::NoSlot),
                        (Some(snapshot), Some(slot)) => Ok(slot.task_lag(snapshot, self.at)),
                    }
                } else {
                    match (snapshot, task.data.as_ref().and_then(|d| d.sync.as_ref())) {
                        (_, None) => Err(LagProblem::NoPosition),
                        (None, Some(_)) => Err(LagProblem::SourceUnread),
                        (Some(snapshot), Some(sync)) => task_lag(snapshot, sync, self.at),
                    }
                };
                Some(MappedLag {
                    source: name_of(source),
                    lag,
                })
            })
            .collect()
    }
}
