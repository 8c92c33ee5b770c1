//! Aggregate functions with PostgreSQL's result types: `count` → bigint; `sum` of
//! smallint/integer → bigint, of bigint/numeric → numeric, of real → real, of double
//! precision → double precision; `avg` of integers/numeric → numeric (with numeric division's
//! scale), of floats → double precision; `min`/`max` → the argument type; `bool_and`,
//! `bool_or`, `every` → boolean. NULL inputs are skipped; an aggregate over no (non-NULL)
//! input is NULL, except `count`, which is 0. `DISTINCT` collects the distinct non-NULL
//! inputs first.

use std::collections::BTreeSet;

use base::error::sqlstate;
use base::{DataType, PgError, Value};
use rust_decimal::Decimal;

use super::Expr;
use super::func::no_such_function;
use super::ops::numeric_div;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Option<Expr>,
    pub distinct: bool,
    pub ret: DataType,
    /// Name as written, for result column names.
    pub name: String,
}

pub fn is_aggregate_name(name: &str) -> bool {
    matches!(
        name,
        "count" | "sum" | "avg" | "min" | "max" | "bool_and" | "bool_or" | "every"
    )
}

/// Resolves an aggregate: (function, type the argument is coerced to, result type).
pub fn resolve(
    name: &str,
    arg: Option<DataType>,
) -> Result<(AggFunc, Option<DataType>, DataType), PgError> {
    use DataType as T;
    let err = || no_such_function(name, &arg.into_iter().collect::<Vec<_>>());
    let Some(t) = arg else {
        return match name {
            "count" => Ok((AggFunc::CountStar, None, T::Int8)),
            _ => Err(err()),
        };
    };
    Ok(match name {
        "count" => (AggFunc::Count, Some(t), T::Int8),
        "sum" => match t {
            T::Int2 | T::Int4 => (AggFunc::Sum, Some(t), T::Int8),
            T::Int8 | T::Numeric(_) => (AggFunc::Sum, Some(t.base()), T::Numeric(None)),
            T::Float4 | T::Float8 => (AggFunc::Sum, Some(t), t),
            _ => return Err(err()),
        },
        "avg" => match t {
            T::Int2 | T::Int4 | T::Int8 | T::Numeric(_) => {
                (AggFunc::Avg, Some(t.base()), T::Numeric(None))
            }
            T::Float4 | T::Float8 => (AggFunc::Avg, Some(t), T::Float8),
            _ => return Err(err()),
        },
        "min" | "max" => {
            let t = if t == T::Unknown { T::Text } else { t };
            let f = if name == "min" {
                AggFunc::Min
            } else {
                AggFunc::Max
            };
            (f, Some(t), t)
        }
        "bool_and" | "every" if matches!(t, T::Bool | T::Unknown) => {
            (AggFunc::BoolAnd, Some(T::Bool), T::Bool)
        }
        "bool_or" if matches!(t, T::Bool | T::Unknown) => (AggFunc::BoolOr, Some(T::Bool), T::Bool),
        _ => return Err(err()),
    })
}

#[derive(Debug)]
enum Acc {
    Count(i64),
    SumInt { sum: i128, seen: bool },
    SumNumeric(Option<Decimal>),
    SumFloat(Option<f64>),
    AvgExact { sum: i128, dec: Decimal, n: i64 },
    AvgFloat { sum: f64, n: i64 },
    Min(Option<Value>),
    Max(Option<Value>),
    Bool { and: bool, value: Option<bool> },
}

/// The running state of one aggregate in one group.
#[derive(Debug)]
pub struct AggState {
    acc: Acc,
    ret: DataType,
    distinct: Option<BTreeSet<Value>>,
}

fn numeric_overflow() -> PgError {
    PgError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
}

impl AggState {
    pub fn new(call: &AggCall) -> AggState {
        let acc = match call.func {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum => match call.ret {
                DataType::Int8 => Acc::SumInt {
                    sum: 0,
                    seen: false,
                },
                DataType::Numeric(_) => Acc::SumNumeric(None),
                _ => Acc::SumFloat(None),
            },
            AggFunc::Avg => match call.ret {
                DataType::Numeric(_) => Acc::AvgExact {
                    sum: 0,
                    dec: Decimal::ZERO,
                    n: 0,
                },
                _ => Acc::AvgFloat { sum: 0.0, n: 0 },
            },
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
            AggFunc::BoolAnd => Acc::Bool {
                and: true,
                value: None,
            },
            AggFunc::BoolOr => Acc::Bool {
                and: false,
                value: None,
            },
        };
        AggState {
            acc,
            ret: call.ret,
            distinct: call.distinct.then(BTreeSet::new),
        }
    }

    /// Feeds one row: `v` is the argument's value (ignored by `count(*)`, which counts rows).
    pub fn update(&mut self, func: AggFunc, v: Value) -> Result<(), PgError> {
        if func == AggFunc::CountStar {
            if let Acc::Count(n) = &mut self.acc {
                *n += 1;
            }
            return Ok(());
        }
        if v.is_null() {
            return Ok(());
        }
        if let Some(set) = &mut self.distinct {
            set.insert(v);
            return Ok(());
        }
        self.accumulate(v)
    }

    fn accumulate(&mut self, v: Value) -> Result<(), PgError> {
        match &mut self.acc {
            Acc::Count(n) => *n += 1,
            Acc::SumInt { sum, seen } => {
                *sum = sum
                    .checked_add(i128::from(v.as_i64().unwrap_or(0)))
                    .ok_or_else(|| PgError::numeric_out_of_range("bigint"))?;
                *seen = true;
            }
            Acc::SumNumeric(s) => {
                let x = match v {
                    Value::Numeric(d) => d,
                    other => Decimal::from(other.as_i64().unwrap_or(0)),
                };
                *s = Some(match s {
                    None => x,
                    Some(acc) => acc.checked_add(x).ok_or_else(numeric_overflow)?,
                });
            }
            Acc::SumFloat(s) => {
                let x = v.as_f64().unwrap_or(0.0);
                *s = Some(s.unwrap_or(0.0) + x);
            }
            Acc::AvgExact { sum, dec, n } => {
                match v {
                    Value::Numeric(d) => *dec = dec.checked_add(d).ok_or_else(numeric_overflow)?,
                    other => {
                        *sum = sum
                            .checked_add(i128::from(other.as_i64().unwrap_or(0)))
                            .ok_or_else(numeric_overflow)?;
                    }
                }
                *n += 1;
            }
            Acc::AvgFloat { sum, n } => {
                *sum += v.as_f64().unwrap_or(0.0);
                *n += 1;
            }
            Acc::Min(m) => {
                if m.as_ref().is_none_or(|cur| v < *cur) {
                    *m = Some(v);
                }
            }
            Acc::Max(m) => {
                if m.as_ref().is_none_or(|cur| v > *cur) {
                    *m = Some(v);
                }
            }
            Acc::Bool { and, value } => {
                let b = matches!(v, Value::Bool(true));
                *value = Some(match value {
                    None => b,
                    Some(cur) => {
                        if *and {
                            *cur && b
                        } else {
                            *cur || b
                        }
                    }
                });
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Value, PgError> {
        if let Some(set) = self.distinct.take() {
            for v in set {
                self.accumulate(v)?;
            }
        }
        Ok(match self.acc {
            Acc::Count(n) => Value::Int8(n),
            Acc::SumInt { sum, seen } => {
                if !seen {
                    Value::Null
                } else {
                    Value::Int8(
                        i64::try_from(sum).map_err(|_| PgError::numeric_out_of_range("bigint"))?,
                    )
                }
            }
            Acc::SumNumeric(s) => s.map_or(Value::Null, Value::Numeric),
            Acc::SumFloat(s) => match (s, self.ret) {
                (None, _) => Value::Null,
                (Some(x), DataType::Float4) => Value::Float4(x as f32),
                (Some(x), _) => Value::Float8(x),
            },
            Acc::AvgExact { sum, dec, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    let total = Decimal::try_from_i128_with_scale(sum, 0)
                        .map_err(|_| numeric_overflow())?
                        .checked_add(dec)
                        .ok_or_else(numeric_overflow)?;
                    Value::Numeric(numeric_div(total, Decimal::from(n))?)
                }
            }
            Acc::AvgFloat { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    Value::Float8(sum / n as f64)
                }
            }
            Acc::Min(m) | Acc::Max(m) => m.unwrap_or(Value::Null),
            Acc::Bool { value, .. } => value.map_or(Value::Null, Value::Bool),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, t: DataType, distinct: bool, vals: &[Value]) -> Value {
        let (func, _, ret) = resolve(name, Some(t)).expect("resolve");
        let call = AggCall {
            func,
            arg: None,
            distinct,
            ret,
            name: name.into(),
        };
        let mut s = AggState::new(&call);
        for v in vals {
            s.update(func, v.clone()).expect("update");
        }
        s.finish().expect("finish")
    }

    #[test]
    fn result_types_and_values_match_postgres() {
        let ints = [Value::Int4(1), Value::Int4(2), Value::Null, Value::Int4(2)];
        assert_eq!(run("count", DataType::Int4, false, &ints), Value::Int8(3));
        assert_eq!(run("count", DataType::Int4, true, &ints), Value::Int8(2));
        assert_eq!(run("sum", DataType::Int4, false, &ints), Value::Int8(5));
        let avg = run(
            "avg",
            DataType::Int4,
            false,
            &[Value::Int4(1), Value::Int4(2)],
        );
        assert_eq!(crate::expr::ops::text_of(&avg), "1.5000000000000000");
        assert_eq!(
            run("sum", DataType::Int4, false, &[Value::Null]),
            Value::Null
        );
        assert_eq!(run("max", DataType::Int4, false, &ints), Value::Int4(2));
        assert_eq!(
            run(
                "sum",
                DataType::Int8,
                false,
                &[Value::Int8(i64::MAX), Value::Int8(1)]
            ),
            Value::Numeric(Decimal::from(i64::MAX) + Decimal::ONE)
        );
        assert!(resolve("sum", Some(DataType::Text)).is_err());
        assert_eq!(resolve("count", None).expect("count").0, AggFunc::CountStar);
    }
}
