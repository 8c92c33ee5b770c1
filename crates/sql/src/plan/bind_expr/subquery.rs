//! Binding subqueries in expressions: scalar, `EXISTS`, `[NOT] IN (SELECT ...)` and those in
//! FROM. The subquery is bound by the same binder (its parameters are the statement's) with
//! its own aggregate state; names it lacks are looked up one level out, which makes it
//! correlated (`Expr::OuterColumn` inside, `Expr::Correlated` outside).

use super::*;

impl Binder<'_> {
    pub(super) fn in_subquery(
        &mut self,
        expr: &ast::Expr,
        subquery: &ast::Query,
        negated: bool,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let subject = self.expr(expr, scope)?;
        let (i, st) = self.subquery(subquery, SubKind::In, scope)?;
        let t = common_type(&[subject.1, st], "IN")?;
        let subject = self.coerce(subject, t, How::Implicit)?;
        if st != t {
            // The subquery's values arrive already in the comparison's type.
            let p = std::mem::replace(
                &mut self.subplans[i].plan.projection[0],
                Expr::Const(Value::Null),
            );
            self.subplans[i].plan.projection[0] = self.coerce((p, st), t, How::Implicit)?;
        }
        if self.subplans[i].correlated {
            let e = Expr::correlated(i, SubKind::In, Some(subject.boxed()), negated);
            return Ok((e, DataType::Bool));
        }
        Ok((
            Expr::InSubquery {
                expr: subject.boxed(),
                sub: i,
                negated,
            },
            DataType::Bool,
        ))
    }

    /// Binds an uncorrelated subquery; returns its index and (for one column) its type.
    pub(in crate::plan) fn subquery(
        &mut self,
        q: &ast::Query,
        kind: SubKind,
        outer: &Scope,
    ) -> Result<(usize, DataType), PgError> {
        let Some(resolve) = self.resolve else {
            return Err(unsupported("subqueries in this context"));
        };
        // The subquery has its own aggregates and clauses; names it lacks are looked up in
        // the enclosing query (one level: a subquery inside it looks only at it).
        let aggs = std::mem::take(&mut self.aggs);
        let mode = self.agg_mode;
        let saved_outer = self.outer.replace(outer.clone());
        if let Some(o) = &saved_outer {
            self.outer_deeper.push(o.clone());
        }
        let saved_correlated = self.correlated.replace(false);
        let r = crate::plan::select::bind_query(self, q, resolve);
        let correlated = self.correlated.replace(saved_correlated);
        if saved_outer.is_some() {
            self.outer_deeper.pop();
        }
        self.outer = saved_outer;
        self.aggs = aggs;
        self.agg_mode = mode;
        let (plan, fields, tables) = r?;
        if correlated && kind == SubKind::Rows {
            return Err(unsupported("LATERAL"));
        }
        for t in tables {
            if !self.sub_tables.iter().any(|x| x.name == t.name) {
                self.sub_tables.push(t);
            }
        }
        if matches!(kind, SubKind::Scalar | SubKind::In) && fields.len() != 1 {
            return Err(PgError::new(
                sqlstate::SYNTAX_ERROR,
                if kind == SubKind::In && fields.len() > 1 {
                    "subquery has too many columns"
                } else {
                    "subquery must return only one column"
                },
            ));
        }
        let ty = fields.first().map_or(DataType::Bool, |f| f.data_type);
        self.subplans.push(crate::plan::SubPlan {
            plan,
            kind,
            correlated,
        });
        self.sub_fields = fields;
        Ok((self.subplans.len() - 1, ty))
    }
}
