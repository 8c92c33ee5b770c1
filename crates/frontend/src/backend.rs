//! The SQL layer as the protocol code sees it: `sql::Engine` and `sql::Session`, behind two
//! crate-private traits.
//!
//! The traits mirror `sql::api` one to one and exist only so that the protocol state machine
//! (portals, max_rows, COPY, error skipping) can be tested against a scripted fake session,
//! while `sql::Session` is still a placeholder. Production code uses only the `sql` types,
//! through `Frontend`. Nothing here adds behaviour.

use std::future::Future;
use std::sync::Arc;

use base::error::PgResult;
use base::{PgError, Value};
use sql::{CancelHandle, Description, ExecOutcome, RowSink, SessionInfo, TxnStatus};

pub(crate) trait Backend: Send + Sync + 'static {
    type Session: BackendSession;

    fn open_session(self: &Arc<Self>, info: SessionInfo) -> PgResult<Self::Session>;
    fn cancel_request(&self, pid: i32, secret: i32);
}

pub(crate) trait BackendSession: Send + 'static {
    /// A prepared statement.
    type Stmt: Send + Sync + 'static;

    fn pid(&self) -> i32;
    fn secret_key(&self) -> i32;
    fn initial_parameter_status(&mut self) -> Vec<(String, String)>;
    fn parse_batch(&mut self, text: &str) -> PgResult<Vec<Arc<Self::Stmt>>>;
    fn prepare(&mut self, text: &str, param_oids: &[u32]) -> PgResult<Arc<Self::Stmt>>;
    fn param_count(stmt: &Self::Stmt) -> usize;
    fn describe(&mut self, stmt: &Self::Stmt) -> PgResult<Description>;
    fn bind_params(
        &self,
        stmt: &Self::Stmt,
        formats: &[i16],
        raw: &[Option<&[u8]>],
    ) -> PgResult<Vec<Value>>;
    fn execute<'a>(
        &'a mut self,
        stmt: &'a Self::Stmt,
        params: &'a [Value],
        sink: &'a mut dyn RowSink,
    ) -> impl Future<Output = PgResult<ExecOutcome>> + Send + 'a;
    fn copy_data<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = PgResult<()>> + Send + 'a;
    fn copy_done(&mut self) -> impl Future<Output = PgResult<String>> + Send + '_;
    fn copy_fail(&mut self, message: &str) -> PgError;
    fn mark_failed(&mut self, err: &PgError);
    fn end_implicit(&mut self) -> impl Future<Output = PgResult<()>> + Send + '_;
    fn transaction_status(&self) -> TxnStatus;
    fn take_notices(&mut self) -> Vec<PgError>;
    fn take_reported_parameters(&mut self) -> Vec<(String, String)>;
    fn cancel_handle(&self) -> CancelHandle;
    fn terminated(&self) -> impl Future<Output = ()> + Send + '_;
}

impl Backend for sql::Engine {
    type Session = sql::Session;

    fn open_session(self: &Arc<Self>, info: SessionInfo) -> PgResult<sql::Session> {
        sql::Engine::open_session(self, info)
    }

    fn cancel_request(&self, pid: i32, secret: i32) {
        sql::Engine::cancel_request(self, pid, secret);
    }
}

impl BackendSession for sql::Session {
    type Stmt = sql::Prepared;

    fn pid(&self) -> i32 {
        sql::Session::pid(self)
    }

    fn secret_key(&self) -> i32 {
        sql::Session::secret_key(self)
    }

    fn initial_parameter_status(&mut self) -> Vec<(String, String)> {
        sql::Session::initial_parameter_status(self)
    }

    fn parse_batch(&mut self, text: &str) -> PgResult<Vec<Arc<sql::Prepared>>> {
        sql::Session::parse_batch(self, text)
    }

    fn prepare(&mut self, text: &str, param_oids: &[u32]) -> PgResult<Arc<sql::Prepared>> {
        sql::Session::prepare(self, text, param_oids)
    }

    fn param_count(stmt: &sql::Prepared) -> usize {
        stmt.param_types().len()
    }

    fn describe(&mut self, stmt: &sql::Prepared) -> PgResult<Description> {
        sql::Session::describe(self, stmt)
    }

    fn bind_params(
        &self,
        stmt: &sql::Prepared,
        formats: &[i16],
        raw: &[Option<&[u8]>],
    ) -> PgResult<Vec<Value>> {
        sql::Session::bind_params(self, stmt, formats, raw)
    }

    fn execute<'a>(
        &'a mut self,
        stmt: &'a sql::Prepared,
        params: &'a [Value],
        sink: &'a mut dyn RowSink,
    ) -> impl Future<Output = PgResult<ExecOutcome>> + Send + 'a {
        sql::Session::execute(self, stmt, params, sink)
    }

    fn copy_data<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = PgResult<()>> + Send + 'a {
        sql::Session::copy_data(self, data)
    }

    fn copy_done(&mut self) -> impl Future<Output = PgResult<String>> + Send + '_ {
        sql::Session::copy_done(self)
    }

    fn copy_fail(&mut self, message: &str) -> PgError {
        sql::Session::copy_fail(self, message)
    }

    fn mark_failed(&mut self, err: &PgError) {
        sql::Session::mark_failed(self, err);
    }

    fn end_implicit(&mut self) -> impl Future<Output = PgResult<()>> + Send + '_ {
        sql::Session::end_implicit(self)
    }

    fn transaction_status(&self) -> TxnStatus {
        sql::Session::transaction_status(self)
    }

    fn take_notices(&mut self) -> Vec<PgError> {
        sql::Session::take_notices(self)
    }

    fn take_reported_parameters(&mut self) -> Vec<(String, String)> {
        sql::Session::take_reported_parameters(self)
    }

    fn cancel_handle(&self) -> CancelHandle {
        sql::Session::cancel_handle(self)
    }

    fn terminated(&self) -> impl Future<Output = ()> + Send + '_ {
        sql::Session::terminated(self)
    }
}
