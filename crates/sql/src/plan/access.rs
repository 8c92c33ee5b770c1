//! Access-path choice: which rows of a table a statement looks at.
//!
//! From the WHERE clause's top-level AND terms: equality on every column of an index (with a
//! row-independent value: constant, parameter, or a function of them) gives an index point
//! lookup, unique indexes first; otherwise a `<`/`<=`/`>`/`>=`/`BETWEEN` bound on the column
//! of a single-column index gives a range scan; otherwise a full scan. The WHERE clause is
//! always re-evaluated on every row found (index entries may be stale, and a lookup key may
//! only approximate the condition), so the access path only narrows, never decides.

use base::catalog::TableDef;

use crate::expr::{CmpOp, Expr};

#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    Scan,
    /// All rows whose key in `def.indexes[index]` equals `key` (one value per key column,
    /// evaluated per execution and converted to the column types).
    Point {
        index: usize,
        key: Vec<Expr>,
    },
    /// Rows of single-column index `index` with keys between the bounds: (value, inclusive).
    Range {
        index: usize,
        lower: Option<(Expr, bool)>,
        upper: Option<(Expr, bool)>,
    },
}

fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        other => out.push(other),
    }
}

/// `(column, op, value)` for a comparison of a column with a row-independent value,
/// normalised so the column is on the left.
fn column_comparison(e: &Expr) -> Option<(usize, CmpOp, &Expr)> {
    let Expr::Cmp(op, a, b) = e else {
        return None;
    };
    match (a.as_ref(), b.as_ref()) {
        (Expr::Column(c), v) if v.is_row_independent() => Some((*c, *op, v)),
        (v, Expr::Column(c)) if v.is_row_independent() => Some((*c, op.swapped(), v)),
        _ => None,
    }
}

/// Chooses the access path for `filter` over `def`'s rows (columns are `def`'s positions).
pub fn choose(def: &TableDef, filter: Option<&Expr>) -> Access {
    let Some(filter) = filter else {
        return Access::Scan;
    };
    let mut terms = Vec::new();
    conjuncts(filter, &mut terms);
    let comparisons: Vec<(usize, CmpOp, &Expr)> =
        terms.iter().filter_map(|t| column_comparison(t)).collect();
    let eq_value = |col: usize| {
        comparisons
            .iter()
            .find(|(c, op, _)| *c == col && *op == CmpOp::Eq)
            .map(|(_, _, v)| (*v).clone())
    };
    // Unique indexes first: a point lookup on them finds at most one live row.
    let mut order: Vec<usize> = (0..def.indexes.len()).collect();
    order.sort_by_key(|&i| (!def.indexes[i].unique, def.indexes[i].columns.len()));
    for &i in &order {
        let idx = &def.indexes[i];
        let key: Option<Vec<Expr>> = idx
            .columns
            .iter()
            .map(|&c| eq_value(usize::from(c)))
            .collect();
        if let Some(key) = key {
            return Access::Point { index: i, key };
        }
    }
    for &i in &order {
        let idx = &def.indexes[i];
        let [col] = idx.columns.as_slice() else {
            continue;
        };
        let col = usize::from(*col);
        let mut lower = None;
        let mut upper = None;
        for (c, op, v) in &comparisons {
            if *c != col {
                continue;
            }
            match op {
                CmpOp::Gt => lower = Some(((*v).clone(), false)),
                CmpOp::GtEq => lower = Some(((*v).clone(), true)),
                CmpOp::Lt => upper = Some(((*v).clone(), false)),
                CmpOp::LtEq => upper = Some(((*v).clone(), true)),
                _ => {}
            }
        }
        if lower.is_some() || upper.is_some() {
            return Access::Range {
                index: i,
                lower,
                upper,
            };
        }
    }
    Access::Scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::DataType;
    use base::catalog::{ColumnDef, IndexDef};

    fn def() -> TableDef {
        let col = |n: &str| ColumnDef {
            name: n.into(),
            data_type: DataType::Int4,
            not_null: false,
            default: None,
        };
        TableDef {
            oid: 1,
            name: "t".into(),
            columns: vec![col("a"), col("b"), col("c")],
            indexes: vec![
                IndexDef {
                    oid: 2,
                    name: "t_b_idx".into(),
                    columns: vec![1],
                    unique: false,
                    primary: false,
                },
                IndexDef {
                    oid: 3,
                    name: "t_pkey".into(),
                    columns: vec![0],
                    unique: true,
                    primary: true,
                },
            ],
            sequence: None,
            checks: Vec::new(),
            foreign_keys: Vec::new(),
        }
    }

    fn eq(c: usize, v: Expr) -> Expr {
        Expr::Cmp(CmpOp::Eq, Expr::Column(c).boxed(), v.boxed())
    }

    #[test]
    fn prefers_unique_point_lookups() {
        let f = Expr::And(eq(1, Expr::Param(0)).boxed(), eq(0, Expr::Param(1)).boxed());
        assert_eq!(
            choose(&def(), Some(&f)),
            Access::Point {
                index: 1,
                key: vec![Expr::Param(1)]
            }
        );
        let f = eq(1, Expr::Param(0));
        assert_eq!(
            choose(&def(), Some(&f)),
            Access::Point {
                index: 0,
                key: vec![Expr::Param(0)]
            }
        );
    }

    #[test]
    fn ranges_and_scans() {
        let f = Expr::Cmp(CmpOp::Lt, Expr::Param(0).boxed(), Expr::Column(0).boxed());
        assert!(matches!(
            choose(&def(), Some(&f)),
            Access::Range {
                index: 1,
                lower: Some((_, false)),
                upper: None
            }
        ));
        // Column compared with another column: not an index key.
        let f = eq(0, Expr::Column(2));
        assert_eq!(choose(&def(), Some(&f)), Access::Scan);
        let f = Expr::Or(eq(0, Expr::Param(0)).boxed(), eq(0, Expr::Param(1)).boxed());
        assert_eq!(choose(&def(), Some(&f)), Access::Scan);
    }
}
