//! Binding function calls: built-in functions by name with PostgreSQL's named arguments
//! and defaults (`call_with_defaults`), the argument conversions each function wants, and
//! aggregate calls (collected into the binder when the clause allows them).

use super::*;

impl Binder<'_> {
    pub(super) fn call_exprs(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let bound: Vec<Bound> = args
            .iter()
            .map(|a| self.expr(a, scope))
            .collect::<Result<_, _>>()?;
        self.call_bound(name, bound)
    }

    pub(super) fn call(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let refs: Vec<&ast::Expr> = args.iter().collect();
        self.call_exprs(name, &refs, scope)
    }

    pub(super) fn call_bound(&mut self, name: &str, bound: Vec<Bound>) -> Result<Bound, PgError> {
        let types: Vec<DataType> = bound.iter().map(|b| b.1).collect();
        let r = func::resolve(name, &types)?;
        let explicit = r.func == Func::Concat;
        let mut args = Vec::with_capacity(bound.len());
        for (b, to) in bound.into_iter().zip(r.arg_types.iter()) {
            let how = if explicit && b.1 != DataType::Unknown {
                How::Explicit
            } else {
                How::Implicit
            };
            args.push(self.coerce(b, *to, how)?);
        }
        if matches!(r.func, Func::Trim(TrimSide::Both)) && args.is_empty() {
            return Err(func::no_such_function(name, &types));
        }
        Ok((Expr::Func(r.func, args), r.ret))
    }

    pub(super) fn function(&mut self, f: &ast::Function, scope: &Scope) -> Result<Bound, PgError> {
        let parts = name_parts(&f.name);
        let name = match parts.as_slice() {
            [n] => n.clone(),
            [schema, n] if schema == "pg_catalog" || schema == "public" => n.clone(),
            _ => return Err(func::no_such_function(&f.name.to_string(), &[])),
        };
        if f.over.is_some() {
            return Err(unsupported("window functions"));
        }
        if f.filter.is_some() {
            return Err(unsupported("aggregate FILTER"));
        }
        if !f.within_group.is_empty() {
            return Err(unsupported("WITHIN GROUP"));
        }
        let (args, distinct) = match &f.args {
            ast::FunctionArguments::None => (Vec::new(), false),
            ast::FunctionArguments::Subquery(_) => return Err(unsupported("subqueries")),
            ast::FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(unsupported("clauses in function arguments"));
                }
                let distinct = matches!(
                    list.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                (list.args.iter().collect::<Vec<_>>(), distinct)
            }
        };
        if agg::is_aggregate_name(&name) {
            return self.aggregate(&name, &args, distinct, scope);
        }
        if distinct {
            return Err(PgError::new(
                WRONG_OBJECT_TYPE,
                format!("DISTINCT specified, but {name} is not an aggregate function"),
            ));
        }
        if let Some(params) = func::defaults(&name) {
            return self.call_with_defaults(&name, &args, params, scope);
        }
        let mut exprs = Vec::with_capacity(args.len());
        for a in &args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => exprs.push(e),
                _ => return Err(unsupported("named or wildcard function arguments")),
            }
        }
        if name == "pg_typeof" && exprs.len() == 1 {
            let b = self.expr(exprs[0], scope)?;
            return Ok((
                Expr::Const(Value::text(types::display_name(b.1))),
                DataType::Text,
            ));
        }
        self.call_exprs(&name, &exprs, scope)
    }

    /// A call of a function with named parameters and defaults (`func::defaults`):
    /// positional arguments first, then `name => value` ones, then the defaults of the rest,
    /// with PostgreSQL's errors for a name given twice or a positional one after a named one.
    pub(crate) fn call_with_defaults(
        &mut self,
        name: &str,
        args: &[&ast::FunctionArg],
        params: &[(&str, Option<func::DefaultArg>)],
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        let mut slots: Vec<Option<Bound>> = (0..params.len()).map(|_| None).collect();
        let mut seen_named = false;
        let mut positional = 0usize;
        let mut types_for_error = Vec::new();
        for a in args {
            let (arg_name, e) = match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                    if seen_named {
                        return Err(PgError::new(
                            sqlstate::SYNTAX_ERROR,
                            "positional argument cannot follow named argument",
                        ));
                    }
                    (None, e)
                }
                ast::FunctionArg::Named {
                    name: n,
                    arg: ast::FunctionArgExpr::Expr(e),
                    ..
                } => {
                    seen_named = true;
                    (Some(ident_name(n)), e)
                }
                // PostgreSQL's dialect parses the name as an expression; only a plain
                // identifier is a parameter name.
                ast::FunctionArg::ExprNamed {
                    name: ast::Expr::Identifier(n),
                    arg: ast::FunctionArgExpr::Expr(e),
                    ..
                } => {
                    seen_named = true;
                    (Some(ident_name(n)), e)
                }
                _ => return Err(unsupported("this kind of function argument")),
            };
            let b = self.expr(e, scope)?;
            types_for_error.push(b.1);
            let at = match arg_name {
                None => {
                    positional += 1;
                    positional - 1
                }
                Some(n) => match params.iter().position(|(p, _)| *p == n) {
                    Some(i) => i,
                    None => return Err(func::no_such_function(name, &types_for_error)),
                },
            };
            let Some(slot) = slots.get_mut(at) else {
                return Err(func::no_such_function(name, &types_for_error));
            };
            if slot.is_some() {
                return Err(PgError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!("argument name \"{}\" used more than once", params[at].0),
                ));
            }
            *slot = Some(b);
        }
        let mut bound = Vec::with_capacity(params.len());
        for (slot, (_, default)) in slots.into_iter().zip(params) {
            match (slot, default) {
                (Some(b), _) => bound.push(b),
                (None, Some(d)) => {
                    let (v, t) = d.bound();
                    bound.push((Expr::Const(v), t));
                }
                (None, None) => return Err(func::no_such_function(name, &types_for_error)),
            }
        }
        self.call_bound(name, bound)
    }

    pub(super) fn aggregate(
        &mut self,
        name: &str,
        args: &[&ast::FunctionArg],
        distinct: bool,
        scope: &Scope,
    ) -> Result<Bound, PgError> {
        match self.agg_mode {
            AggMode::Forbidden(clause) => {
                return Err(PgError::new(
                    sqlstate::GROUPING_ERROR,
                    format!("aggregate functions are not allowed in {clause}"),
                ));
            }
            AggMode::InsideAggregate => {
                return Err(PgError::new(
                    sqlstate::GROUPING_ERROR,
                    "aggregate function calls cannot be nested",
                ));
            }
            AggMode::Allowed => {}
        }
        let arg = match args {
            [] => None,
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] if name == "count" => None,
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => {
                self.agg_mode = AggMode::InsideAggregate;
                let b = self.expr(e, scope);
                self.agg_mode = AggMode::Allowed;
                Some(b?)
            }
            _ => {
                let types: Vec<DataType> = Vec::new();
                return Err(func::no_such_function(name, &types));
            }
        };
        if name != "count" && arg.is_none() {
            return Err(func::no_such_function(name, &[]));
        }
        let (f, arg_type, ret) = agg::resolve(name, arg.as_ref().map(|b| b.1))?;
        let arg = match (arg, arg_type) {
            (Some(b), Some(t)) => Some(self.coerce(b, t, How::Implicit)?),
            (Some(b), None) => Some(b.0),
            (None, _) => None,
        };
        self.aggs.push(AggCall {
            func: f,
            arg,
            distinct,
            ret,
            name: name.to_owned(),
        });
        Ok((Expr::Agg(self.aggs.len() - 1), ret))
    }
}
