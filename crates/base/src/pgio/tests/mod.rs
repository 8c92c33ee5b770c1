//! Cases are PostgreSQL 15's regression expectations (`boolean.out`, `int2/4/8.out`,
//! `float4/8.out`, `numeric.out`, `timestamp(tz).out`, `strings.out` for bytea) where they
//! exercise behaviour lockstep supports, plus round trips and property tests.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::error::SqlState;

use DataType as T;

fn text(v: &Value, ty: DataType) -> String {
    format_text_string(v, ty)
}

/// Parses and prints back, panicking with the error on failure.
fn io(s: &str, ty: DataType) -> String {
    match parse_text(s, ty) {
        Ok(v) => text(&v, ty),
        Err(e) => panic!("{s:?} as {ty}: {e:?}"),
    }
}

fn err(s: &str, ty: DataType) -> PgError {
    match parse_text(s, ty) {
        Ok(v) => panic!("{s:?} as {ty} parsed to {v:?}"),
        Err(e) => e,
    }
}

fn assert_err(s: &str, ty: DataType, code: &str, message: &str) {
    let e = err(s, ty);
    assert_eq!(
        (e.code.code(), e.message.as_str()),
        (code, message),
        "input {s:?} as {ty}"
    );
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

mod numbers;
mod properties;
mod strings;
mod timestamps;
