//! Sequences: what `nextval` and `setval` decide, and when a value must reach the WAL first.
//!
//! A sequence is a relation of one row (`last_value`, `log_cnt`, `is_called`) whose
//! parameters are in its `TableDef` (`base::catalog::SequenceDef`). Handing out values is not
//! transactional: a value once returned is never returned again, whether the transaction that
//! took it commits or not.
//!
//! Logging ahead, as PostgreSQL's `SEQ_LOG_VALS`: instead of a WAL record per value, a record
//! covers the next `SEQ_LOG_VALS` values at once: it stores the *horizon*, the last value
//! that may be handed out before the next record, and the row is stored with that horizon as
//! `last_value`. After a crash (or a promotion) the sequence resumes after the horizon, so it
//! skips at most `SEQ_LOG_VALS - 1` values and never repeats one. A commit that used a value
//! flushes the WAL up to its own record, which lies after the record that covered the value,
//! so no acknowledged row can carry a value the sequence could hand out again.
//!
//! Where it runs: under the sequence's mutex, inside the `nextval` call of whatever session
//! asks; the caller supplies how to read the stored row (first use after start) and how to log
//! a horizon (a WAL record, or, for a sequence its own transaction created and has not
//! committed, nothing: that transaction's commit record carries the row). If logging fails
//! the state is left as it was.
//!
//! Invariants: under the mutex, every value handed out lies at or before the last logged
//! horizon (in the sequence's direction, counting wrap-arounds of a CYCLE sequence); `log_cnt`
//! is how many more values may be handed out before the next horizon must be logged.

use base::catalog::SequenceDef;
use parking_lot::Mutex;

/// How many values one WAL record covers (PostgreSQL's SEQ_LOG_VALS): at most this many
/// values are skipped after a crash, and a busy sequence writes one record per this many calls.
pub const SEQ_LOG_VALS: i64 = 32;

/// Why a sequence could not produce or take a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError<E> {
    /// A non-cycling sequence reached its MAXVALUE (`max` true) or MINVALUE.
    #[error("reached {} value of sequence ({limit})", if *max { "maximum" } else { "minimum" })]
    Exhausted { max: bool, limit: i64 },
    /// `setval` outside MINVALUE..MAXVALUE.
    #[error("value {value} is out of bounds for sequence ({min}..{max})")]
    OutOfBounds { value: i64, min: i64, max: i64 },
    /// Logging the horizon failed (a WAL error).
    #[error("{0}")]
    Log(E),
}

#[derive(Debug, Default)]
struct Runtime {
    /// Read from the stored row yet (lazily, at the first call after the table was loaded).
    loaded: bool,
    last: i64,
    is_called: bool,
    log_cnt: i64,
}

impl Runtime {
    /// Reads the stored row at first use. What is stored is a horizon: everything up to it
    /// may have been handed out, so nothing is left to use before logging a new one.
    fn load(&mut self, load: impl FnOnce() -> (i64, bool)) {
        if !self.loaded {
            let (last, is_called) = load();
            *self = Runtime {
                loaded: true,
                last,
                is_called,
                log_cnt: 0,
            };
        }
    }
}

/// The in-memory state of one sequence, shared by every `Table` value of it.
#[derive(Debug, Default)]
pub struct SequenceState {
    inner: Mutex<Runtime>,
}

/// The value after `last` (PostgreSQL's nextval step): `None` when a non-cycling sequence is
/// exhausted, with which limit.
pub fn step(def: &SequenceDef, last: i64) -> Result<i64, (bool, i64)> {
    let up = def.increment > 0;
    let next = last.checked_add(def.increment);
    match next {
        Some(n) if n >= def.min && n <= def.max => Ok(n),
        _ if def.cycle => Ok(if up { def.min } else { def.max }),
        _ => Err(if up {
            (true, def.max)
        } else {
            (false, def.min)
        }),
    }
}

/// The value `steps` steps after `from` (fewer if a non-cycling sequence runs out), and how
/// many steps that was.
fn ahead(def: &SequenceDef, from: i64, steps: i64) -> (i64, i64) {
    let mut v = from;
    for taken in 0..steps {
        match step(def, v) {
            Ok(n) => v = n,
            Err(_) => return (v, taken),
        }
    }
    (v, steps)
}

impl SequenceState {
    /// `nextval`. `load` gives the stored (`last_value`, `is_called`) at first use; `log` is
    /// called with the new horizon when the values logged so far are used up, before the
    /// value is handed out.
    pub fn nextval<E>(
        &self,
        def: &SequenceDef,
        load: impl FnOnce() -> (i64, bool),
        log: impl FnOnce(i64) -> Result<(), E>,
    ) -> Result<i64, SequenceError<E>> {
        let mut rt = self.inner.lock();
        rt.load(load);
        let value = if rt.is_called {
            step(def, rt.last).map_err(|(max, limit)| SequenceError::Exhausted { max, limit })?
        } else {
            rt.last
        };
        let mut log_cnt = rt.log_cnt;
        if log_cnt <= 0 {
            // This value and the next SEQ_LOG_VALS - 1.
            let (horizon, _) = ahead(def, value, SEQ_LOG_VALS - 1);
            log(horizon).map_err(SequenceError::Log)?;
            log_cnt = SEQ_LOG_VALS;
        }
        rt.last = value;
        rt.is_called = true;
        rt.log_cnt = log_cnt - 1;
        Ok(value)
    }

    /// `setval(value, is_called)`: `log` stores (`value`, `is_called`) before it takes effect.
    pub fn setval<E>(
        &self,
        def: &SequenceDef,
        value: i64,
        is_called: bool,
        log: impl FnOnce(i64, bool) -> Result<(), E>,
    ) -> Result<(), SequenceError<E>> {
        if value < def.min || value > def.max {
            return Err(SequenceError::OutOfBounds {
                value,
                min: def.min,
                max: def.max,
            });
        }
        let mut rt = self.inner.lock();
        log(value, is_called).map_err(SequenceError::Log)?;
        *rt = Runtime {
            loaded: true,
            last: value,
            is_called,
            log_cnt: 0,
        };
        Ok(())
    }

    /// The row the creating transaction's commit stores for a sequence it created: the
    /// horizon of the values handed out so far (and the next `SEQ_LOG_VALS`, which later
    /// calls may then use without a record of their own), or the untouched start.
    /// `load` as for `nextval`.
    pub fn commit_row(&self, def: &SequenceDef, load: impl FnOnce() -> (i64, bool)) -> (i64, bool) {
        let mut rt = self.inner.lock();
        rt.load(load);
        if !rt.is_called {
            rt.log_cnt = 0;
            return (rt.last, false);
        }
        let (horizon, steps) = ahead(def, rt.last, SEQ_LOG_VALS);
        rt.log_cnt = steps;
        (horizon, true)
    }

    /// What `SELECT * FROM seq` shows: (`last_value`, `log_cnt`, `is_called`) as handed out
    /// so far, not the horizon stored for recovery.
    pub fn current(&self, load: impl FnOnce() -> (i64, bool)) -> (i64, i64, bool) {
        let rt = self.inner.lock();
        if rt.loaded {
            (rt.last, rt.log_cnt.max(0), rt.is_called)
        } else {
            let (last, is_called) = load();
            (last, 0, is_called)
        }
    }

    /// Forgets the in-memory state, so the next call reads the stored row again (after redo
    /// changed it behind this state, e.g. on a standby that is then promoted).
    pub fn reset(&self) {
        *self.inner.lock() = Runtime::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::DataType;

    fn def(increment: i64, min: i64, max: i64, cycle: bool) -> SequenceDef {
        SequenceDef {
            data_type: DataType::Int8,
            start: if increment > 0 { min } else { max },
            increment,
            min,
            max,
            cache: 1,
            cycle,
            owned_by: None,
        }
    }

    /// Runs `n` nextvals, collecting the values and the horizons logged.
    fn run(
        s: &SequenceState,
        d: &SequenceDef,
        n: usize,
        stored: (i64, bool),
    ) -> (Vec<i64>, Vec<i64>) {
        let mut values = Vec::new();
        let mut logged = Vec::new();
        for _ in 0..n {
            let mut h = None;
            let v = s
                .nextval::<()>(
                    d,
                    || stored,
                    |x| {
                        h = Some(x);
                        Ok(())
                    },
                )
                .expect("value");
            values.push(v);
            logged.extend(h);
        }
        (values, logged)
    }

    #[test]
    fn values_are_logged_a_horizon_ahead_and_resume_after_it() {
        let d = def(1, 1, i64::MAX, false);
        let s = SequenceState::default();
        let (values, logged) = run(&s, &d, 70, (1, false));
        assert_eq!(values, (1..=70).collect::<Vec<_>>());
        assert_eq!(
            logged,
            vec![32, 64, 96],
            "one record per 32 values, 31 ahead"
        );
        // A restart finds the last horizon stored: it skips what was logged but not used.
        let s = SequenceState::default();
        let (values, logged) = run(&s, &d, 2, (96, true));
        assert_eq!(values, vec![97, 98]);
        assert_eq!(logged, vec![128]);
    }

    #[test]
    fn every_value_handed_out_is_covered_by_a_horizon_logged_before_it() {
        for d in [
            def(3, -10, 200, false),
            def(-2, -100, 50, false),
            def(7, 1, 100, true),
        ] {
            let s = SequenceState::default();
            let mut covered_upto: Option<i64> = None;
            let mut handed = 0;
            for _ in 0..200 {
                let mut h = None;
                match s.nextval::<()>(
                    &d,
                    || (d.start, false),
                    |x| {
                        h = Some(x);
                        Ok(())
                    },
                ) {
                    Ok(v) => {
                        if let Some(x) = h {
                            covered_upto = Some(x);
                        }
                        let limit = covered_upto.expect("a horizon before the first value");
                        if !d.cycle {
                            assert!(
                                if d.increment > 0 {
                                    v <= limit
                                } else {
                                    v >= limit
                                },
                                "{v} beyond horizon {limit}"
                            );
                        }
                        handed += 1;
                    }
                    Err(SequenceError::Exhausted { .. }) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert!(handed > 0);
        }
    }

    #[test]
    fn limits_cycle_or_stop() {
        let d = def(2, 1, 6, false);
        let s = SequenceState::default();
        let (values, _) = run(&s, &d, 3, (1, false));
        assert_eq!(values, vec![1, 3, 5]);
        assert_eq!(
            s.nextval::<()>(&d, || (0, false), |_| Ok(())),
            Err(SequenceError::Exhausted {
                max: true,
                limit: 6
            })
        );
        let d = def(2, 1, 6, true);
        let s = SequenceState::default();
        assert_eq!(run(&s, &d, 5, (1, false)).0, vec![1, 3, 5, 1, 3]);
        let d = def(-1, -3, -1, false);
        let s = SequenceState::default();
        assert_eq!(run(&s, &d, 3, (-1, false)).0, vec![-1, -2, -3]);
        assert_eq!(
            s.nextval::<()>(&d, || (0, false), |_| Ok(())),
            Err(SequenceError::Exhausted {
                max: false,
                limit: -3
            })
        );
        // Overflow of i64 is the limit, not a wrap.
        let d = def(i64::MAX, 0, i64::MAX, false);
        let s = SequenceState::default();
        assert_eq!(run(&s, &d, 2, (0, false)).0, vec![0, i64::MAX]);
        assert!(s.nextval::<()>(&d, || (0, false), |_| Ok(())).is_err());
    }

    #[test]
    fn setval_logs_at_once_and_a_failed_log_changes_nothing() {
        let d = def(1, 1, 100, false);
        let s = SequenceState::default();
        assert_eq!(run(&s, &d, 3, (1, false)).0, vec![1, 2, 3]);
        let mut stored = None;
        s.setval::<()>(&d, 50, true, |v, c| {
            stored = Some((v, c));
            Ok(())
        })
        .expect("setval");
        assert_eq!(stored, Some((50, true)));
        assert_eq!(run(&s, &d, 1, (0, false)), (vec![51], vec![82]));
        s.setval::<()>(&d, 10, false, |_, _| Ok(()))
            .expect("setval");
        assert_eq!(run(&s, &d, 1, (0, false)).0, vec![10]);
        assert_eq!(
            s.setval::<()>(&d, 101, true, |_, _| Ok(())),
            Err(SequenceError::OutOfBounds {
                value: 101,
                min: 1,
                max: 100
            })
        );
        let r = s.nextval(&d, || (0, false), |_| Err("disk"));
        assert_eq!(r, Ok(11), "no log needed yet");
        s.setval::<()>(&d, 20, true, |_, _| Ok(())).expect("setval");
        assert_eq!(
            s.nextval(&d, || (0, false), |_| Err("disk")),
            Err(SequenceError::Log("disk"))
        );
        assert_eq!(
            run(&s, &d, 1, (0, false)).0,
            vec![21],
            "the failed call took nothing"
        );
    }

    #[test]
    fn the_creating_commit_stores_a_horizon_that_later_calls_use() {
        let d = def(1, 1, 1000, false);
        let s = SequenceState::default();
        assert_eq!(s.commit_row(&d, || (1, false)), (1, false));
        assert_eq!(run(&s, &d, 5, (1, false)).0, vec![1, 2, 3, 4, 5]);
        assert_eq!(s.commit_row(&d, || (1, false)), (37, true));
        let (values, logged) = run(&s, &d, 33, (0, false));
        assert_eq!(values, (6..=38).collect::<Vec<_>>());
        assert_eq!(
            logged,
            vec![69],
            "32 values covered by the commit, then a record"
        );
    }
}
