//! Scalar functions: resolution by name and argument types (at bind time) and evaluation.
//!
//! `resolve` mirrors PostgreSQL's function lookup for the functions lockstep has: it picks
//! the variant for the argument types (integers go to the `double precision` variant of
//! `round`/`ceil`/`floor`, as PostgreSQL's preferred-type rule does) and says which type each
//! argument must be coerced to; an unknown name or argument list is 42883 with PostgreSQL's
//! message (`function f(integer) does not exist`).
//!
//! Functions that reach the session or server (`current_setting`, `pg_cancel_backend`,
//! `pg_current_wal_lsn`, ...) read `Env`; the only one that changes the session,
//! `set_config`, records an `Effect`.
//!
//! Replication functions call `ServerHooks` (the walsender/walreceiver/slot code behind them
//! is not here): WAL positions are `pg_lsn`; `pg_promote` is awaited by the session before
//! the statement runs (`session::run::await_promote`) because evaluation is synchronous;
//! `pg_create_physical_replication_slot` returns its record as text `(name,lsn)` in a select
//! list (lockstep has no record type) and as columns (slot_name, lsn) in FROM; slot
//! functions and `pg_promote` require a superuser (42501), since lockstep's roles have no
//! REPLICATION attribute. Named arguments and defaults follow `defaults`.

use base::error::sqlstate;
use base::{DataType, Lsn, PgError, Value};
use rust_decimal::Decimal;

use super::ops::{self, text_of};
use super::{Effect, EvalCx, Expr, eval};
use crate::exec::sequence;
use crate::plan::coerce::common_type;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimSide {
    Both,
    Leading,
    Trailing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Coalesce,
    NullIf,
    Greatest,
    Least,
    Abs,
    Round,
    RoundTo,
    Trunc,
    TruncTo,
    Ceil,
    Floor,
    Mod,
    Length,
    OctetLength,
    Lower,
    Upper,
    Substr,
    Position,
    Trim(TrimSide),
    Replace,
    Left,
    Right,
    Repeat,
    Concat,
    Now,
    LocalTimestamp,
    CurrentDate,
    /// `date_trunc(unit, ts)` (see `expr::datetime`).
    DateTrunc,
    /// `date_part(field, ts)`: float8.
    DatePart,
    /// `extract(field, ts)`, what `EXTRACT(field FROM ts)` calls: numeric.
    Extract,
    /// `timezone(zone, ts)`, what `ts AT TIME ZONE zone` calls.
    AtTimeZone,
    StatementTimestamp,
    ClockTimestamp,
    Random,
    Version,
    CurrentSetting,
    SetConfig,
    BackendPid,
    CancelBackend,
    TerminateBackend,
    IsInRecovery,
    ReloadConf,
    CurrentWalLsn,
    CurrentWalInsertLsn,
    CurrentWalFlushLsn,
    LastWalReceiveLsn,
    LastWalReplayLsn,
    LastXactReplayTimestamp,
    WalLsnDiff,
    Promote,
    CreatePhysicalReplicationSlot,
    DropReplicationSlot,
    WalfileName,
    CurrentUser,
    SessionUser,
    CurrentDatabase,
    CurrentSchema,
    InetServerPort,
    StatResetShared,
    /// Sequences (`exec::sequence`): `nextval`, `currval`, `setval`, `lastval`,
    /// `pg_get_serial_sequence`.
    NextVal,
    CurrVal,
    SetVal,
    LastVal,
    SerialSequence,
    /// `~` / `~*` / `!~` / `!~*` (bound from the operators, see `expr::regex`).
    RegexMatch {
        case_insensitive: bool,
        negated: bool,
    },
}

impl Func {
    /// Functions whose value changes within one statement (never index keys, never folded).
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            Func::Random
                | Func::ClockTimestamp
                | Func::SetConfig
                | Func::CancelBackend
                | Func::TerminateBackend
                | Func::ReloadConf
                | Func::CurrentWalLsn
                | Func::CurrentWalInsertLsn
                | Func::CurrentWalFlushLsn
                | Func::LastWalReceiveLsn
                | Func::LastWalReplayLsn
                | Func::LastXactReplayTimestamp
                | Func::Promote
                | Func::CreatePhysicalReplicationSlot
                | Func::DropReplicationSlot
                | Func::StatResetShared
                | Func::NextVal
                | Func::CurrVal
                | Func::SetVal
                | Func::LastVal
        )
    }
}

/// A resolved call: the function, the type each argument is coerced to, the result type.
#[derive(Debug)]
pub struct Resolved {
    pub func: Func,
    pub arg_types: Vec<DataType>,
    pub ret: DataType,
}

fn sig(args: &[DataType]) -> String {
    args.iter()
        .map(|t| t.sql_name_no_typmod())
        .collect::<Vec<_>>()
        .join(", ")
}

/// PostgreSQL's "function does not exist" error.
pub fn no_such_function(name: &str, args: &[DataType]) -> PgError {
    PgError::new(
        sqlstate::UNDEFINED_FUNCTION,
        format!("function {name}({}) does not exist", sig(args)),
    )
    .with_hint(
        "No function matches the given name and argument types. You might need to add explicit type casts.",
    )
}

trait NoTypmod {
    fn sql_name_no_typmod(self) -> String;
}

impl NoTypmod for DataType {
    fn sql_name_no_typmod(self) -> String {
        match self {
            DataType::Varchar(_) => "character varying".into(),
            DataType::Char(_) => "character".into(),
            DataType::Numeric(_) => "numeric".into(),
            other => other.sql_name(),
        }
    }
}

fn is_num(t: DataType) -> bool {
    t.is_numeric_family()
}

fn is_text(t: DataType) -> bool {
    t.is_string()
}

fn is_lsn(t: DataType) -> bool {
    matches!(t, DataType::PgLsn | DataType::Unknown)
}

fn is_ts(t: DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp | DataType::TimestampTz | DataType::Unknown
    )
}

fn is_bool(t: DataType) -> bool {
    matches!(t, DataType::Bool | DataType::Unknown)
}

/// Parameter names and defaults of the functions that have them (PostgreSQL's
/// `pg_proc.proargnames`/`proargdefaults`), for named-argument calls (`wait => false`) and
/// omitted trailing arguments. `None` for functions without defaults.
pub fn defaults(name: &str) -> Option<&'static [(&'static str, Option<DefaultArg>)]> {
    use DefaultArg as D;
    Some(match name {
        "pg_promote" => &[
            ("wait", Some(D::Bool(true))),
            ("wait_seconds", Some(D::Int(60))),
        ],
        "pg_create_physical_replication_slot" => &[
            ("slot_name", None),
            ("immediately_reserve", Some(D::Bool(false))),
            ("temporary", Some(D::Bool(false))),
        ],
        _ => return None,
    })
}

/// A parameter default.
#[derive(Clone, Copy, Debug)]
pub enum DefaultArg {
    Bool(bool),
    Int(i32),
}

impl DefaultArg {
    pub fn bound(self) -> (Value, DataType) {
        match self {
            DefaultArg::Bool(b) => (Value::Bool(b), DataType::Bool),
            DefaultArg::Int(i) => (Value::Int4(i), DataType::Int4),
        }
    }
}

fn is_int(t: DataType) -> bool {
    t.is_integer() || t == DataType::Unknown
}

/// The numeric variant for "numeric or double precision" functions: numeric stays numeric,
/// anything else goes to double precision (PostgreSQL's preferred type).
fn num_or_float(t: DataType) -> DataType {
    match t {
        DataType::Numeric(_) => DataType::Numeric(None),
        _ => DataType::Float8,
    }
}

/// Resolves `name(args)`.
pub fn resolve(name: &str, args: &[DataType]) -> Result<Resolved, PgError> {
    use DataType as T;
    let n = args.len();
    let a0 = args.first().copied().unwrap_or(T::Unknown);
    let a1 = args.get(1).copied().unwrap_or(T::Unknown);
    let none = || no_such_function(name, args);
    let ok = |func: Func, arg_types: Vec<DataType>, ret: DataType| {
        Ok(Resolved {
            func,
            arg_types,
            ret,
        })
    };
    match (name, n) {
        ("coalesce" | "greatest" | "least", 1..) => {
            let t = common_type(args, &name.to_uppercase())?;
            let f = match name {
                "coalesce" => Func::Coalesce,
                "greatest" => Func::Greatest,
                _ => Func::Least,
            };
            ok(f, vec![t; n], t)
        }
        ("nullif", 2) => {
            let t = common_type(args, "NULLIF")?;
            ok(Func::NullIf, vec![t, t], t)
        }
        ("abs", 1) if is_num(a0) || a0 == T::Unknown => {
            let t = if a0 == T::Unknown {
                T::Float8
            } else {
                a0.base()
            };
            ok(Func::Abs, vec![t], t)
        }
        ("round", 1) if is_num(a0) || a0 == T::Unknown => {
            let t = num_or_float(a0);
            ok(Func::Round, vec![t], t)
        }
        ("round", 2) if (is_num(a0) || a0 == T::Unknown) && is_int(a1) => ok(
            Func::RoundTo,
            vec![T::Numeric(None), T::Int4],
            T::Numeric(None),
        ),
        ("trunc", 1) if is_num(a0) || a0 == T::Unknown => {
            let t = num_or_float(a0);
            ok(Func::Trunc, vec![t], t)
        }
        ("trunc", 2) if (is_num(a0) || a0 == T::Unknown) && is_int(a1) => ok(
            Func::TruncTo,
            vec![T::Numeric(None), T::Int4],
            T::Numeric(None),
        ),
        ("ceil" | "ceiling" | "floor", 1) if is_num(a0) || a0 == T::Unknown => {
            let t = num_or_float(a0);
            let f = if name == "floor" {
                Func::Floor
            } else {
                Func::Ceil
            };
            ok(f, vec![t], t)
        }
        ("mod", 2) if (is_num(a0) || a0 == T::Unknown) && (is_num(a1) || a1 == T::Unknown) => {
            let t = crate::plan::coerce::promote_numeric(a0, a1).unwrap_or(T::Numeric(None));
            let t = match t {
                T::Float4 | T::Float8 => T::Numeric(None),
                other => other,
            };
            ok(Func::Mod, vec![t, t], t)
        }
        ("length" | "char_length" | "character_length", 1) if is_text(a0) => {
            ok(Func::Length, vec![T::Text], T::Int4)
        }
        ("length" | "octet_length", 1) if a0 == T::Bytea => {
            ok(Func::OctetLength, vec![T::Bytea], T::Int4)
        }
        ("octet_length", 1) if is_text(a0) => ok(Func::OctetLength, vec![T::Text], T::Int4),
        ("lower" | "upper", 1) if is_text(a0) => ok(
            if name == "lower" {
                Func::Lower
            } else {
                Func::Upper
            },
            vec![T::Text],
            T::Text,
        ),
        ("substr" | "substring", 2 | 3) if is_text(a0) && args[1..].iter().all(|t| is_int(*t)) => {
            let mut types = vec![T::Text, T::Int4];
            if n == 3 {
                types.push(T::Int4);
            }
            ok(Func::Substr, types, T::Text)
        }
        ("strpos", 2) if is_text(a0) && is_text(a1) => {
            ok(Func::Position, vec![T::Text, T::Text], T::Int4)
        }
        ("btrim" | "ltrim" | "rtrim", 1 | 2) if args.iter().all(|t| is_text(*t)) => {
            let side = match name {
                "ltrim" => TrimSide::Leading,
                "rtrim" => TrimSide::Trailing,
                _ => TrimSide::Both,
            };
            ok(Func::Trim(side), vec![T::Text; n], T::Text)
        }
        ("replace", 3) if args.iter().all(|t| is_text(*t)) => {
            ok(Func::Replace, vec![T::Text; 3], T::Text)
        }
        ("left" | "right", 2) if is_text(a0) && is_int(a1) => ok(
            if name == "left" {
                Func::Left
            } else {
                Func::Right
            },
            vec![T::Text, T::Int4],
            T::Text,
        ),
        ("repeat", 2) if is_text(a0) && is_int(a1) => {
            ok(Func::Repeat, vec![T::Text, T::Int4], T::Text)
        }
        // concat prints each argument with its type's output function (true → t).
        ("concat", _) => ok(Func::Concat, vec![T::Unknown; n], T::Text),
        ("now" | "transaction_timestamp" | "current_timestamp", 0) => {
            ok(Func::Now, vec![], T::TimestampTz)
        }
        ("localtimestamp", 0) => ok(Func::LocalTimestamp, vec![], T::Timestamp),
        ("current_date", 0) => ok(Func::CurrentDate, vec![], T::Date),
        ("date_trunc" | "date_part" | "extract", 2)
            if is_text(a0) && (is_ts(a1) || a1 == T::Date) =>
        {
            // A date is read as a timestamp: timestamptz for date_trunc (PostgreSQL's
            // preferred type wins its overload), timestamp for the field functions.
            let t = match a1 {
                T::Unknown => T::TimestampTz,
                T::Date if name == "date_trunc" => T::TimestampTz,
                T::Date => T::Timestamp,
                other => other,
            };
            let (f, ret) = match name {
                "date_trunc" => (Func::DateTrunc, t),
                "date_part" => (Func::DatePart, T::Float8),
                _ => (Func::Extract, T::Numeric(None)),
            };
            ok(f, vec![T::Text, t], ret)
        }
        ("timezone", 2) if (is_text(a0) || a0 == T::Interval) && is_ts(a1) => {
            let t = if a1 == T::Unknown { T::TimestampTz } else { a1 };
            let z = if a0 == T::Interval {
                T::Interval
            } else {
                T::Text
            };
            ok(
                Func::AtTimeZone,
                vec![z, t],
                super::datetime::at_time_zone_type(t),
            )
        }
        ("statement_timestamp", 0) => ok(Func::StatementTimestamp, vec![], T::TimestampTz),
        ("clock_timestamp", 0) => ok(Func::ClockTimestamp, vec![], T::TimestampTz),
        ("random", 0) => ok(Func::Random, vec![], T::Float8),
        ("version", 0) => ok(Func::Version, vec![], T::Text),
        ("current_setting", 1) if is_text(a0) => ok(Func::CurrentSetting, vec![T::Text], T::Text),
        ("current_setting", 2) if is_text(a0) && matches!(a1, T::Bool | T::Unknown) => {
            ok(Func::CurrentSetting, vec![T::Text, T::Bool], T::Text)
        }
        ("set_config", 3)
            if is_text(a0) && is_text(a1) && matches!(args[2], T::Bool | T::Unknown) =>
        {
            ok(Func::SetConfig, vec![T::Text, T::Text, T::Bool], T::Text)
        }
        ("pg_backend_pid", 0) => ok(Func::BackendPid, vec![], T::Int4),
        ("pg_cancel_backend", 1) if is_int(a0) => ok(Func::CancelBackend, vec![T::Int4], T::Bool),
        ("pg_terminate_backend", 1 | 2) if is_int(a0) && (n == 1 || is_int(a1)) => {
            let mut t = vec![T::Int4];
            if n == 2 {
                t.push(T::Int8);
            }
            ok(Func::TerminateBackend, t, T::Bool)
        }
        ("pg_is_in_recovery", 0) => ok(Func::IsInRecovery, vec![], T::Bool),
        ("nextval", 1) if is_text(a0) => ok(Func::NextVal, vec![T::Text], T::Int8),
        ("currval", 1) if is_text(a0) => ok(Func::CurrVal, vec![T::Text], T::Int8),
        ("setval", 2) if is_text(a0) && is_int(a1) => {
            ok(Func::SetVal, vec![T::Text, T::Int8], T::Int8)
        }
        ("setval", 3) if is_text(a0) && is_int(a1) && is_bool(args[2]) => {
            ok(Func::SetVal, vec![T::Text, T::Int8, T::Bool], T::Int8)
        }
        ("lastval", 0) => ok(Func::LastVal, vec![], T::Int8),
        ("pg_get_serial_sequence", 2) if is_text(a0) && is_text(a1) => {
            ok(Func::SerialSequence, vec![T::Text, T::Text], T::Text)
        }
        ("pg_reload_conf", 0) => ok(Func::ReloadConf, vec![], T::Bool),
        ("pg_current_wal_lsn", 0) => ok(Func::CurrentWalLsn, vec![], T::PgLsn),
        ("pg_current_wal_insert_lsn", 0) => ok(Func::CurrentWalInsertLsn, vec![], T::PgLsn),
        ("pg_current_wal_flush_lsn", 0) => ok(Func::CurrentWalFlushLsn, vec![], T::PgLsn),
        ("pg_last_wal_receive_lsn", 0) => ok(Func::LastWalReceiveLsn, vec![], T::PgLsn),
        ("pg_last_wal_replay_lsn", 0) => ok(Func::LastWalReplayLsn, vec![], T::PgLsn),
        ("pg_last_xact_replay_timestamp", 0) => {
            ok(Func::LastXactReplayTimestamp, vec![], T::TimestampTz)
        }
        ("pg_wal_lsn_diff", 2) if is_lsn(a0) && is_lsn(a1) => {
            ok(Func::WalLsnDiff, vec![T::PgLsn, T::PgLsn], T::Numeric(None))
        }
        // The binder fills in PostgreSQL's defaults (`func::defaults`), so these always
        // arrive with every argument.
        ("pg_promote", 2) if is_bool(a0) && is_int(a1) => {
            ok(Func::Promote, vec![T::Bool, T::Int4], T::Bool)
        }
        // PostgreSQL returns a record (slot_name name, lsn pg_lsn); lockstep has no record
        // type and returns the record's text form, `(s,0/1000028)`.
        ("pg_create_physical_replication_slot", 3)
            if is_text(a0) && is_bool(a1) && is_bool(args[2]) =>
        {
            ok(
                Func::CreatePhysicalReplicationSlot,
                vec![T::Text, T::Bool, T::Bool],
                T::Text,
            )
        }
        // PostgreSQL returns void, whose text form is empty; lockstep has no void type.
        ("pg_drop_replication_slot", 1) if is_text(a0) => {
            ok(Func::DropReplicationSlot, vec![T::Text], T::Text)
        }
        ("pg_stat_reset_shared", 1) if is_text(a0) => {
            ok(Func::StatResetShared, vec![T::Text], T::Text)
        }
        ("pg_walfile_name", 1) if is_lsn(a0) => ok(Func::WalfileName, vec![T::PgLsn], T::Text),
        ("current_user" | "user" | "current_role", 0) => ok(Func::CurrentUser, vec![], T::Text),
        ("session_user", 0) => ok(Func::SessionUser, vec![], T::Text),
        ("current_database" | "current_catalog", 0) => ok(Func::CurrentDatabase, vec![], T::Text),
        ("current_schema", 0) => ok(Func::CurrentSchema, vec![], T::Text),
        ("inet_server_port", 0) => ok(Func::InetServerPort, vec![], T::Int4),
        _ => Err(none()),
    }
}

fn arg(args: &[Expr], i: usize, row: &[Value], cx: &EvalCx<'_>) -> Result<Value, PgError> {
    match args.get(i) {
        Some(e) => eval(e, row, cx),
        None => Ok(Value::Null),
    }
}

fn text_arg(v: &Value) -> Option<&str> {
    v.as_str()
}

fn int_arg(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn lsn_value(l: Lsn) -> Value {
    Value::PgLsn(l.0)
}

/// `ReplicationSlotValidateName`: 1 to 63 characters, lower-case letters, digits and `_`.
pub fn validate_slot_name(name: &str) -> Result<(), PgError> {
    if name.is_empty() {
        return Err(PgError::new(
            sqlstate::INVALID_NAME,
            format!("replication slot name \"{name}\" is too short"),
        ));
    }
    if name.len() >= 64 {
        return Err(PgError::new(
            sqlstate::NAME_TOO_LONG,
            format!("replication slot name \"{name}\" is too long"),
        ));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Err(PgError::new(
            sqlstate::INVALID_NAME,
            format!("replication slot name \"{name}\" contains invalid character"),
        )
        .with_hint(
            "Replication slot names may only contain lower case letters, numbers, and the underscore character.",
        ));
    }
    Ok(())
}

/// `pg_create_physical_replication_slot(slot_name, immediately_reserve, temporary)`: checks,
/// then the hook. `None` when an argument is NULL (the function is strict).
pub fn create_slot(
    cx: &EvalCx<'_>,
    args: &[Value],
) -> Result<Option<(String, Option<Lsn>)>, PgError> {
    let (Some(name), Some(reserve), Some(temporary)) = (
        args.first().and_then(Value::as_str),
        args.get(1).and_then(Value::as_bool),
        args.get(2).and_then(Value::as_bool),
    ) else {
        return Ok(None);
    };
    check_slot_permissions(cx)?;
    validate_slot_name(name)?;
    if temporary {
        return Err(PgError::feature_not_supported(
            "temporary replication slots",
        ));
    }
    let lsn = cx
        .env
        .engine
        .hooks
        .create_physical_replication_slot(name, reserve)?;
    Ok(Some((name.to_owned(), lsn)))
}

/// `CheckSlotPermissions`. lockstep's roles have no REPLICATION attribute yet, so only
/// superusers pass.
fn check_slot_permissions(cx: &EvalCx<'_>) -> Result<(), PgError> {
    if cx.env.superuser {
        return Ok(());
    }
    Err(PgError::new(
        sqlstate::INSUFFICIENT_PRIVILEGE,
        "must be superuser or replication role to use replication slots",
    ))
}

fn substr(s: &str, start: i64, len: Option<i64>) -> Result<Value, PgError> {
    // PostgreSQL: characters [start, start+len) with 1-based start; positions before 1 count
    // against the length; a negative length is an error.
    if let Some(l) = len
        && l < 0
    {
        return Err(PgError::new(
            base::SqlState("22011"),
            "negative substring length not allowed",
        ));
    }
    let from = start.max(1);
    let end = match len {
        Some(l) => start.saturating_add(l),
        None => i64::MAX,
    };
    if end <= from {
        return Ok(Value::text(""));
    }
    let skip = usize::try_from(from - 1).unwrap_or(usize::MAX);
    let take = usize::try_from(end - from).unwrap_or(usize::MAX);
    Ok(Value::Text(
        s.chars().skip(skip).take(take).collect::<String>().into(),
    ))
}

fn trim(s: &str, chars: &str, side: TrimSide) -> String {
    let set: Vec<char> = chars.chars().collect();
    let f = |c: char| set.contains(&c);
    match side {
        TrimSide::Both => s.trim_matches(f).to_owned(),
        TrimSide::Leading => s.trim_start_matches(f).to_owned(),
        TrimSide::Trailing => s.trim_end_matches(f).to_owned(),
    }
}

fn round_float(f: f64) -> f64 {
    // PostgreSQL's dround uses rint(): halves round to even.
    f.round_ties_even()
}

/// Largest repeat result, as PostgreSQL's 1 GB field limit.
const REPEAT_BYTES_MAX: usize = 1 << 30;

/// Calls a scalar function.
pub fn call(f: Func, args: &[Expr], row: &[Value], cx: &EvalCx<'_>) -> Result<Value, PgError> {
    let env = cx.env;
    // Functions that are not strict (NULL arguments do not make the result NULL).
    match f {
        Func::Coalesce => {
            for a in args {
                let v = eval(a, row, cx)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(Value::Null);
        }
        Func::Greatest | Func::Least => {
            let mut best: Option<Value> = None;
            for a in args {
                let v = eval(a, row, cx)?;
                if v.is_null() {
                    continue;
                }
                best = Some(match best {
                    None => v,
                    Some(b) => {
                        let take = if f == Func::Greatest { v > b } else { v < b };
                        if take { v } else { b }
                    }
                });
            }
            return Ok(best.unwrap_or(Value::Null));
        }
        Func::NullIf => {
            let a = arg(args, 0, row, cx)?;
            let b = arg(args, 1, row, cx)?;
            return Ok(if !a.is_null() && !b.is_null() && a == b {
                Value::Null
            } else {
                a
            });
        }
        Func::Concat => {
            let mut s = String::new();
            for a in args {
                let v = eval(a, row, cx)?;
                if !v.is_null() {
                    s.push_str(&text_of(&v));
                }
            }
            return Ok(Value::Text(s.into()));
        }
        Func::CurrentSetting => {
            let name = arg(args, 0, row, cx)?;
            let missing_ok = matches!(arg(args, 1, row, cx)?, Value::Bool(true));
            let Some(name) = text_arg(&name) else {
                return Ok(Value::Null);
            };
            return match env.gucs.get(name) {
                Ok(v) => Ok(Value::Text(v.into())),
                Err(_) if missing_ok => Ok(Value::Null),
                Err(e) => Err(e),
            };
        }
        Func::SetConfig => {
            let name = arg(args, 0, row, cx)?;
            let value = arg(args, 1, row, cx)?;
            let local = matches!(arg(args, 2, row, cx)?, Value::Bool(true));
            let Some(name) = text_arg(&name) else {
                return Err(PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "SET requires parameter name",
                ));
            };
            let value = text_arg(&value).unwrap_or("").to_owned();
            // Validate now so the error belongs to this statement; the session applies it.
            let mut probe = env.gucs.clone_for_probe();
            probe.set(name, Some(&value), local)?;
            let shown = probe.get(name)?;
            env.effects.lock().push(Effect::SetConfig {
                name: name.to_owned(),
                value,
                local,
            });
            return Ok(Value::Text(shown.into()));
        }
        _ => {}
    }
    let mut vals: smallvec::SmallVec<[Value; 3]> = smallvec::SmallVec::new();
    for i in 0..args.len() {
        let v = arg(args, i, row, cx)?;
        if v.is_null() {
            return Ok(Value::Null);
        }
        vals.push(v);
    }
    let v0 = vals.first().cloned().unwrap_or(Value::Null);
    let v1 = vals.get(1).cloned().unwrap_or(Value::Null);
    Ok(match f {
        Func::Abs => match v0 {
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => {
                if v0 < Value::Int2(0) {
                    ops::negate(&v0)?
                } else {
                    v0
                }
            }
            Value::Float4(x) => Value::Float4(x.abs()),
            Value::Float8(x) => Value::Float8(x.abs()),
            Value::Numeric(d) => Value::Numeric(d.abs()),
            _ => Value::Null,
        },
        Func::Round | Func::Trunc | Func::Ceil | Func::Floor => match v0 {
            Value::Float8(x) => Value::Float8(match f {
                Func::Round => round_float(x),
                Func::Trunc => x.trunc(),
                Func::Ceil => x.ceil(),
                _ => x.floor(),
            }),
            Value::Numeric(d) => Value::Numeric(match f {
                Func::Round => d.round_dp_with_strategy(
                    0,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                ),
                Func::Trunc => d.trunc(),
                Func::Ceil => d.ceil(),
                _ => d.floor(),
            }),
            _ => Value::Null,
        },
        Func::RoundTo | Func::TruncTo => {
            let (Value::Numeric(d), Some(places)) = (&v0, int_arg(&v1)) else {
                return Ok(Value::Null);
            };
            let d = *d;
            let strategy = if f == Func::RoundTo {
                rust_decimal::RoundingStrategy::MidpointAwayFromZero
            } else {
                rust_decimal::RoundingStrategy::ToZero
            };
            if places >= 0 {
                let p = u32::try_from(places.min(28)).unwrap_or(28);
                Value::Numeric(ops::with_scale(d.round_dp_with_strategy(p, strategy), p))
            } else {
                // Negative places round to tens, hundreds, ...
                let exp = u32::try_from((-places).min(28)).unwrap_or(28);
                let factor = Decimal::from_i128_with_scale(10i128.pow(exp), 0);
                let scaled = d
                    .checked_div(factor)
                    .map(|x| x.round_dp_with_strategy(0, strategy))
                    .and_then(|x| x.checked_mul(factor))
                    .unwrap_or(Decimal::ZERO);
                Value::Numeric(scaled)
            }
        }
        Func::Mod => ops::arith(super::ArithOp::Mod, &v0, &v1)?,
        Func::Length => Value::Int4(
            i32::try_from(text_arg(&v0).map_or(0, |s| s.chars().count())).unwrap_or(i32::MAX),
        ),
        Func::OctetLength => Value::Int4(
            i32::try_from(match &v0 {
                Value::Text(s) => s.len(),
                Value::Bytea(b) => b.len(),
                _ => 0,
            })
            .unwrap_or(i32::MAX),
        ),
        Func::RegexMatch {
            case_insensitive,
            negated,
        } => {
            let (Some(text), Some(pattern)) = (text_arg(&v0), text_arg(&v1)) else {
                return Ok(Value::Null);
            };
            Value::Bool(super::regex::matches(text, pattern, case_insensitive)? != negated)
        }
        Func::Lower => Value::Text(text_arg(&v0).unwrap_or("").to_lowercase().into()),
        Func::Upper => Value::Text(text_arg(&v0).unwrap_or("").to_uppercase().into()),
        Func::Substr => {
            let len = vals.get(2).and_then(int_arg);
            substr(text_arg(&v0).unwrap_or(""), int_arg(&v1).unwrap_or(1), len)?
        }
        Func::Position => {
            let (hay, needle) = (text_arg(&v0).unwrap_or(""), text_arg(&v1).unwrap_or(""));
            let pos = hay.find(needle).map_or(0, |b| hay[..b].chars().count() + 1);
            Value::Int4(i32::try_from(pos).unwrap_or(i32::MAX))
        }
        Func::Trim(side) => {
            let chars = if vals.len() > 1 {
                text_arg(&v1).unwrap_or(" ")
            } else {
                " "
            };
            Value::Text(trim(text_arg(&v0).unwrap_or(""), chars, side).into())
        }
        Func::Replace => {
            let from = text_arg(&v1).unwrap_or("");
            let to = vals.get(2).and_then(text_arg).unwrap_or("");
            let s = text_arg(&v0).unwrap_or("");
            Value::Text(
                if from.is_empty() {
                    s.to_owned()
                } else {
                    s.replace(from, to)
                }
                .into(),
            )
        }
        Func::Left | Func::Right => {
            let s: Vec<char> = text_arg(&v0).unwrap_or("").chars().collect();
            let n = int_arg(&v1).unwrap_or(0);
            let len = s.len() as i64;
            let k = if n >= 0 { n.min(len) } else { (len + n).max(0) };
            let k = usize::try_from(k).unwrap_or(0);
            let part: String = if f == Func::Left {
                s[..k].iter().collect()
            } else {
                s[s.len() - k..].iter().collect()
            };
            Value::Text(part.into())
        }
        Func::Repeat => {
            let s = text_arg(&v0).unwrap_or("");
            let n = usize::try_from(int_arg(&v1).unwrap_or(0).max(0)).unwrap_or(0);
            if s.len().saturating_mul(n) > REPEAT_BYTES_MAX {
                return Err(PgError::new(
                    sqlstate::PROGRAM_LIMIT_EXCEEDED,
                    "requested length too large",
                ));
            }
            Value::Text(s.repeat(n).into())
        }
        Func::Now => Value::TimestampTz(env.txn_start),
        Func::LocalTimestamp => Value::Timestamp(base::tz::current().utc_to_local(env.txn_start)),
        Func::CurrentDate => Value::Date(base::pgio::timestamp_to_date(
            base::tz::current().utc_to_local(env.txn_start),
        )),
        Func::DateTrunc => super::datetime::trunc(&v0, &v1)?,
        Func::DatePart => super::datetime::part(&v0, &v1, false)?,
        Func::Extract => super::datetime::part(&v0, &v1, true)?,
        Func::AtTimeZone => super::datetime::at_time_zone(&v1, &v0)?,
        Func::StatementTimestamp => Value::TimestampTz(env.stmt_start),
        Func::ClockTimestamp => Value::TimestampTz(crate::engine::now_micros()),
        Func::Random => Value::Float8(rand::random::<f64>()),
        Func::Version => Value::Text(version_string().into()),
        Func::BackendPid => Value::Int4(env.pid),
        Func::CancelBackend | Func::TerminateBackend => {
            let pid = int_arg(&v0)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0);
            signal_backend(cx, pid, f == Func::TerminateBackend)?
        }
        Func::IsInRecovery => Value::Bool(env.engine.hooks.is_in_recovery()),
        Func::NextVal | Func::CurrVal | Func::SetVal => {
            let Some(name) = text_arg(&v0) else {
                return Ok(Value::Null);
            };
            let seq = &env.sequences;
            Value::Int8(match f {
                Func::NextVal => {
                    sequence::nextval(env.engine, &seq.snapshot, seq.seen, seq.read_only, name)?
                }
                Func::CurrVal => sequence::currval(env.engine, &seq.snapshot, seq.seen, name)?,
                _ => {
                    let value = int_arg(&v1).unwrap_or(0);
                    let is_called = !matches!(vals.get(2), Some(Value::Bool(false)));
                    sequence::setval(
                        env.engine,
                        &seq.snapshot,
                        seq.seen,
                        seq.read_only,
                        name,
                        value,
                        is_called,
                    )?
                }
            })
        }
        Func::LastVal => Value::Int8(sequence::lastval(env.sequences.seen)?),
        Func::SerialSequence => {
            let (Some(table), Some(column)) = (text_arg(&v0), text_arg(&v1)) else {
                return Ok(Value::Null);
            };
            sequence::serial_sequence(env.engine, &env.sequences.snapshot, table, column)?
                .map_or(Value::Null, |s| Value::Text(s.into()))
        }
        Func::ReloadConf => {
            require_superuser(cx, "pg_reload_conf")?;
            Value::Bool(env.engine.hooks.reload_config())
        }
        Func::CurrentWalLsn | Func::CurrentWalInsertLsn | Func::CurrentWalFlushLsn => {
            if env.engine.hooks.is_in_recovery() {
                return Err(recovery_in_progress(
                    "WAL control functions cannot be executed during recovery.",
                ));
            }
            lsn_value(match f {
                Func::CurrentWalLsn => env.engine.hooks.wal_write_lsn(),
                Func::CurrentWalInsertLsn => env.engine.hooks.wal_insert_lsn(),
                _ => env.engine.hooks.wal_flush_lsn(),
            })
        }
        Func::LastWalReceiveLsn => env
            .engine
            .hooks
            .last_wal_receive_lsn()
            .map_or(Value::Null, lsn_value),
        Func::LastWalReplayLsn => env
            .engine
            .hooks
            .last_wal_replay_lsn()
            .map_or(Value::Null, lsn_value),
        Func::LastXactReplayTimestamp => env
            .engine
            .hooks
            .last_xact_replay_timestamp()
            .map_or(Value::Null, Value::TimestampTz),
        Func::WalLsnDiff => super::ops::arith(super::ArithOp::Sub, &v0, &v1)?,
        Func::Promote => {
            require_superuser(cx, "pg_promote")?;
            let wait = matches!(v0, Value::Bool(true));
            let secs = int_arg(&v1).unwrap_or(60);
            if secs <= 0 {
                return Err(PgError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "\"wait_seconds\" must not be negative or zero",
                ));
            }
            // The session awaited the hook before running the statement (`prepare_async`);
            // a call it could not see in advance (inside a FROM query) runs only if the hook
            // completes at once.
            let done = env.promote_result.lock().take();
            let result = match done {
                Some(r) => r,
                None => {
                    use futures::FutureExt;
                    let secs = i32::try_from(secs).unwrap_or(i32::MAX);
                    env.engine
                        .hooks
                        .promote(wait, secs)
                        .now_or_never()
                        .unwrap_or_else(|| {
                            Err(PgError::feature_not_supported(
                                "pg_promote with wait inside a query with FROM",
                            ))
                        })
                }
            };
            Value::Bool(result?)
        }
        Func::CreatePhysicalReplicationSlot => match create_slot(cx, &vals)? {
            Some((name, lsn)) => {
                let lsn = lsn.map(|l| l.to_string()).unwrap_or_default();
                Value::Text(record_text(&[&name, &lsn]).into())
            }
            None => Value::Null,
        },
        Func::DropReplicationSlot => {
            check_slot_permissions(cx)?;
            let name = text_arg(&v0).unwrap_or("");
            validate_slot_name(name)?;
            env.engine.hooks.drop_replication_slot(name)?;
            Value::text("")
        }
        Func::StatResetShared => {
            // PostgreSQL 15 revokes EXECUTE from PUBLIC; lockstep has no GRANT on functions.
            if !env.superuser {
                return Err(PgError::new(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    "permission denied for function pg_stat_reset_shared",
                ));
            }
            match text_arg(&v0).unwrap_or("") {
                "wal" => env.engine.hooks.reset_wal_stats(),
                // lockstep keeps no statistics for these; resetting them is a no-op.
                "archiver" | "bgwriter" | "recovery_prefetch" => {}
                other => {
                    return Err(PgError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("unrecognized reset target: \"{other}\""),
                    )
                    .with_hint(
                        "Target must be \"archiver\", \"bgwriter\", \"recovery_prefetch\", or \"wal\".",
                    ));
                }
            }
            Value::text("")
        }
        Func::WalfileName => {
            if env.engine.hooks.is_in_recovery() {
                return Err(recovery_in_progress(
                    "pg_walfile_name() cannot be executed during recovery.",
                ));
            }
            let lsn = match v0 {
                Value::PgLsn(l) => Lsn(l),
                _ => return Ok(Value::Null),
            };
            let seg_size = env.engine.hooks.wal_segment_size().max(1);
            // PostgreSQL's XLByteToPrevSeg: the segment holding the byte *before* `lsn`.
            let segno = lsn.0.saturating_sub(1) / seg_size;
            Value::Text(
                base::lsn::segment_file_name(env.engine.hooks.timeline(), segno, seg_size).into(),
            )
        }
        Func::CurrentUser | Func::SessionUser => Value::Text(env.user.into()),
        Func::CurrentDatabase => Value::Text(env.database.into()),
        Func::CurrentSchema => Value::text("public"),
        Func::InetServerPort => {
            Value::Int4(i32::try_from(env.gucs.config().get_int("port")).unwrap_or(0))
        }
        Func::Coalesce
        | Func::Greatest
        | Func::Least
        | Func::NullIf
        | Func::Concat
        | Func::CurrentSetting
        | Func::SetConfig => Value::Null,
    })
}

/// `record_out` for a record of text-like fields: parenthesised, comma-separated, empty for
/// NULL, quoted when a field is empty or holds `(),"\` or blanks.
pub fn record_text(fields: &[&str]) -> String {
    let mut out = String::from("(");
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let quote = f
            .chars()
            .any(|c| matches!(c, '(' | ')' | ',' | '"' | '\\') || c.is_whitespace());
        if quote {
            out.push('"');
            for c in f.chars() {
                if c == '"' || c == '\\' {
                    out.push(c);
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push(')');
    out
}

fn recovery_in_progress(hint: &str) -> PgError {
    PgError::new(
        sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
        "recovery is in progress",
    )
    .with_hint(hint.to_owned())
}

fn require_superuser(cx: &EvalCx<'_>, what: &str) -> Result<(), PgError> {
    if cx.env.superuser {
        return Ok(());
    }
    Err(PgError::new(
        sqlstate::INSUFFICIENT_PRIVILEGE,
        format!("permission denied for function {what}"),
    ))
}

/// pg_cancel_backend / pg_terminate_backend: superusers may signal anyone, others only
/// backends of their own role; an unknown pid is a WARNING and `false`.
fn signal_backend(cx: &EvalCx<'_>, pid: i32, terminate: bool) -> Result<Value, PgError> {
    let env = cx.env;
    let Some(target) = env.engine.backend(pid) else {
        env.effects.lock().push(Effect::Notice(PgError::warning(
            sqlstate::WARNING,
            format!("PID {pid} is not a PostgreSQL backend process"),
        )));
        return Ok(Value::Bool(false));
    };
    if !env.superuser && target.user != env.user {
        let (verb, what) = if terminate {
            ("terminate", "terminate")
        } else {
            ("cancel", "cancel queries of")
        };
        return Err(PgError::new(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("permission denied to {verb} process"),
        )
        .with_detail(format!(
            "Only roles with the same role as the backend being signaled may {what} it."
        )));
    }
    if terminate {
        target.terminate();
    } else {
        target.interrupt.cancel();
    }
    Ok(Value::Bool(true))
}

/// `version()`: clients parse the leading "PostgreSQL 15.0".
pub fn version_string() -> String {
    let arch = std::env::consts::ARCH;
    format!(
        "PostgreSQL 15.0 (lockstep {}) on {arch}-pc-linux-gnu, compiled by rustc",
        env!("CARGO_PKG_VERSION")
    )
}
