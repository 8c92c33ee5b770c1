//! The replication connection: greeting, the command loop, and START_REPLICATION's
//! walsender loop. PostgreSQL's `walsender.c` driver parts (`exec_replication_command`,
//! `StartReplication`, `WalSndLoop`, `XLogSendPhysical`).
//!
//! Where it runs: one tokio task per replication connection (the frontend's connection
//! task), plus a reader task that turns the socket into whole messages.
//!
//! The streaming loop drives `replication::walsender::WalSender`: local WAL progress comes
//! from the `WalBuffer`'s watch channel (written WAL, before the local fsync: shipping runs
//! in parallel with the flush), standby messages from the reader, time from
//! `next_deadline`. WAL bytes come from the in-memory window or, when the standby lags
//! behind it, from segment files. While the loop sleeps caught up, the WAL writer may send
//! new WAL on the socket itself (`crate::direct`); the loop disarms that on every wake-up,
//! before it decides what to send, and adopts what was sent.
//!
//! Failure: a malformed message ends the connection with FATAL 08P01 (never a panic, never
//! an effect on other connections); command errors are ErrorResponse + ReadyForQuery;
//! `wal_sender_timeout` ends the connection without a message, as PostgreSQL does.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base::error::sqlstate;
use base::{Lsn, PgError, TimelineId};
use frontend::{ReplicationConnection, ReplicationHandler};
use futures::future::BoxFuture;
use replication::commands::{self, ReplicationCommand, results};
use replication::messages::{
    PgTimestamp, PrimaryKeepalive, PrimaryMessage, StandbyMessage, encode_xlog_data_header,
};
use replication::timeline::{TimelineHistory, history_file_name};
use replication::walsender::{
    LocalWal, SenderAction, SenderError, WalSender, WalSenderConfig, WalSndState,
};
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

use crate::ctl::{SenderEntry, WalSndCtl};
use crate::direct::DirectSend;
use crate::wire::{self, Frame};

/// The walsender as the frontend's replication handler.
pub struct WalSenderHandler {
    ctl: Arc<WalSndCtl>,
}

impl WalSenderHandler {
    pub fn new(ctl: Arc<WalSndCtl>) -> Arc<WalSenderHandler> {
        Arc::new(WalSenderHandler { ctl })
    }
}

impl ReplicationHandler for WalSenderHandler {
    fn handle(&self, conn: ReplicationConnection) -> BoxFuture<'static, ()> {
        let ctl = self.ctl.clone();
        Box::pin(async move { serve(ctl, conn).await })
    }
}

/// Refuses a replication connection with a FATAL error (e.g. on a standby).
pub async fn refuse(conn: ReplicationConnection, e: PgError) {
    let mut out = Vec::new();
    wire::error(&mut out, &e);
    let mut stream = conn.stream;
    let _ = stream.write_all(&out).await;
    let _ = stream.flush().await;
}

pub(crate) type Writer = WriteHalf<frontend::ClientStream>;

/// One connection's context.
pub(crate) struct Conn {
    pub ctl: Arc<WalSndCtl>,
    pub out: Vec<u8>,
    pub wr: Writer,
    pub rx: mpsc::Receiver<Result<Frame, PgError>>,
    pub slot: usize,
    pub pid: i32,
    pub id: u64,
    pub shutdown: frontend::ShutdownWatch,
    /// A second handle to the socket for the WAL writer's direct send (`crate::direct`).
    pub direct_sock: Option<socket2::Socket>,
}

/// Why the connection ends.
pub(crate) enum End {
    /// Client sent Terminate or closed the socket.
    Closed,
    /// Send this FATAL and close.
    Fatal(PgError),
    /// Close without a message (timeout, shutdown after streaming).
    Quiet,
}

impl Conn {
    pub async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.wr.write_all(&self.out).await;
        self.out.clear();
        r.map_err(|_| End::Closed)?;
        self.wr.flush().await.map_err(|_| End::Closed)
    }

    /// Sends a command error and ReadyForQuery.
    pub async fn command_error(&mut self, e: &PgError) -> Result<(), End> {
        wire::error(&mut self.out, e);
        wire::ready_for_query(&mut self.out);
        self.flush().await
    }
}

fn server_params(conn: &ReplicationConnection) -> Vec<(&'static str, String)> {
    vec![
        ("application_name", conn.application_name.clone()),
        ("client_encoding", "UTF8".into()),
        ("DateStyle", "ISO, MDY".into()),
        ("default_transaction_read_only", "off".into()),
        ("in_hot_standby", "off".into()),
        // pg_receivewal and pg_basebackup refuse servers without integer timestamps.
        ("integer_datetimes", "on".into()),
        ("IntervalStyle", "postgres".into()),
        (
            "is_superuser",
            if conn.role.superuser { "on" } else { "off" }.into(),
        ),
        ("server_encoding", "UTF8".into()),
        // pg_basebackup picks its protocol from the major version: 15 = new-style BASE_BACKUP.
        ("server_version", "15.0".into()),
        ("session_authorization", conn.user.clone()),
        ("standard_conforming_strings", "on".into()),
        ("TimeZone", "UTC".into()),
    ]
}

async fn serve(ctl: Arc<WalSndCtl>, conn: ReplicationConnection) {
    let entry = SenderEntry {
        pid: 0,
        user: conn.user.clone(),
        application_name: conn.application_name.clone(),
        client_addr: conn.client_addr,
        backend_start: SystemTime::now(),
        state: WalSndState::Startup,
        sent_lsn: Lsn::ZERO,
        write_lsn: Lsn::ZERO,
        flush_lsn: Lsn::ZERO,
        replay_lsn: Lsn::ZERO,
        reply_time: None,
        lags: [None; 3],
        query: String::new(),
    };
    let params = server_params(&conn);
    let logical = conn.kind == auth::ReplicationKind::Logical;
    // Without it streaming still works, only every WAL write waits for this task to wake.
    let direct_sock = conn.stream.duplicate().ok();
    let (rd, mut wr) = tokio::io::split(conn.stream);
    if logical {
        // Only physical replication exists in lockstep.
        let mut out = Vec::new();
        wire::error(
            &mut out,
            &PgError::fatal(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "logical replication connections are not supported",
            ),
        );
        let _ = wr.write_all(&out).await;
        return;
    }
    let (slot, pid) = match ctl.register(entry) {
        Ok(x) => x,
        Err(e) => {
            let mut out = Vec::new();
            wire::error(&mut out, &e);
            let _ = wr.write_all(&out).await;
            return;
        }
    };
    let rx = wire::spawn_reader(rd, conn.read_buf);
    let mut c = Conn {
        id: ctl.next_id(),
        ctl: ctl.clone(),
        out: Vec::new(),
        wr,
        rx,
        slot,
        pid,
        shutdown: conn.shutdown,
        direct_sock,
    };
    for (n, v) in &params {
        wire::parameter_status(&mut c.out, n, v);
    }
    wire::backend_key_data(&mut c.out, pid, rand_key());
    wire::ready_for_query(&mut c.out);
    let end = match c.flush().await {
        Ok(()) => command_loop(&mut c).await,
        Err(e) => e,
    };
    match end {
        End::Fatal(e) => {
            tracing::warn!("walsender {pid}: {}", e.message);
            wire::error(&mut c.out, &e);
            let _ = c.flush().await;
        }
        End::Closed | End::Quiet => {}
    }
    let _ = c.wr.shutdown().await;
    ctl.slots.lock().connection_ended(c.id, pid);
    ctl.unregister(slot);
}

fn rand_key() -> i32 {
    // Cancel requests are not served on replication connections; the key only has to look
    // like one. Time-derived, no RNG dependency needed.
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as i32)
}

async fn command_loop(c: &mut Conn) -> End {
    let ctl = c.ctl.clone();
    let mut shutdown = c.shutdown.clone();
    loop {
        let frame = tokio::select! {
            f = c.rx.recv() => f,
            _ = ctl.stop_requested(&mut shutdown) => {
                return End::Fatal(PgError::fatal(
                    sqlstate::ADMIN_SHUTDOWN,
                    "terminating connection due to administrator command",
                ));
            }
        };
        let f = match frame {
            None => return End::Closed,
            Some(Err(e)) => return End::Fatal(e),
            Some(Ok(f)) => f,
        };
        match f.tag {
            b'X' => return End::Closed,
            b'Q' => {
                let text = String::from_utf8_lossy(&f.body);
                let text = text.trim_end_matches('\0').to_owned();
                if let Err(e) = run_query(c, &text).await {
                    return e;
                }
            }
            // Stray copy messages outside a copy (e.g. after the stream ended) are ignored,
            // as PostgreSQL's walsender does in its command loop.
            b'd' | b'c' | b'f' | b'H' | b'S' => {}
            other => {
                return End::Fatal(PgError::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("invalid frontend message type {other}"),
                ));
            }
        }
    }
}

async fn run_query(c: &mut Conn, text: &str) -> Result<(), End> {
    if text.trim().trim_end_matches(';').trim().is_empty() {
        wire::empty_query(&mut c.out);
        wire::ready_for_query(&mut c.out);
        return c.flush().await;
    }
    c.ctl.update(c.slot, |e| e.query = text.to_owned());
    let cmd = match commands::parse_command(text) {
        Ok(cmd) => cmd,
        Err(e) => return c.command_error(&e).await,
    };
    tracing::debug!("walsender {}: {text}", c.pid);
    let r = match cmd {
        ReplicationCommand::IdentifySystem => {
            let row = results::identify_system(
                c.ctl.system_identifier,
                c.ctl.wal.timeline(),
                c.ctl.wal.flush_lsn(),
            );
            wire::result_row(&mut c.out, &row);
            wire::command_complete(&mut c.out, "IDENTIFY_SYSTEM");
            Ok(())
        }
        ReplicationCommand::Show { name } => show(c, &name),
        ReplicationCommand::TimelineHistory { timeline } => {
            let path = c.ctl.wal.dir().join(history_file_name(timeline));
            match std::fs::read(&path) {
                Ok(content) => {
                    wire::result_row(&mut c.out, &results::timeline_history(timeline, &content));
                    wire::command_complete(&mut c.out, "TIMELINE_HISTORY");
                    Ok(())
                }
                Err(e) => Err(PgError::new(
                    if e.kind() == std::io::ErrorKind::NotFound {
                        base::error::SqlState("58P01")
                    } else {
                        sqlstate::IO_ERROR
                    },
                    format!(
                        "could not open file \"pg_wal/{}\": {e}",
                        history_file_name(timeline)
                    ),
                )),
            }
        }
        ReplicationCommand::CreateReplicationSlot {
            slot_name,
            temporary,
            reserve_wal,
        } => c
            .ctl
            .create_slot(&slot_name, temporary, reserve_wal, Some(c.id))
            .map(|_| {
                wire::result_row(&mut c.out, &results::create_physical_slot(&slot_name));
                wire::command_complete(&mut c.out, "CREATE_REPLICATION_SLOT");
            }),
        ReplicationCommand::DropReplicationSlot { slot_name, wait } => {
            let mut r = c.ctl.drop_slot(&slot_name);
            // WAIT: wait for the slot's walsender to go away instead of failing.
            let deadline = Instant::now() + std::time::Duration::from_secs(60);
            while wait
                && matches!(&r, Err(e) if e.code.code() == "55006")
                && Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                r = c.ctl.drop_slot(&slot_name);
            }
            r.map(|()| wire::command_complete(&mut c.out, "DROP_REPLICATION_SLOT"))
        }
        ReplicationCommand::ReadReplicationSlot { slot_name } => {
            let lsn = c
                .ctl
                .slots
                .lock()
                .get(&slot_name)
                .map(|s| if s.lost { Lsn::ZERO } else { s.restart_lsn });
            let history = load_history(&c.ctl);
            wire::result_row(&mut c.out, &results::read_replication_slot(lsn, &history));
            wire::command_complete(&mut c.out, "READ_REPLICATION_SLOT");
            Ok(())
        }
        ReplicationCommand::StartReplication {
            slot_name,
            start_lsn,
            timeline,
        } => {
            let r = start_replication(c, slot_name.clone(), start_lsn, timeline).await;
            if let Some(name) = &slot_name {
                c.ctl.slots.lock().release(name);
            }
            c.ctl.update(c.slot, |e| e.state = WalSndState::Startup);
            match r {
                Ok(()) => Ok(()),
                Err(StreamEnd::Command(e)) => Err(e),
                Err(StreamEnd::Conn(end)) => return Err(end),
            }
        }
        ReplicationCommand::BaseBackup(opts) => match crate::basebackup::run(c, opts).await {
            Ok(()) => Ok(()),
            Err(StreamEnd::Command(e)) => Err(e),
            Err(StreamEnd::Conn(end)) => return Err(end),
        },
    };
    match r {
        Ok(()) => {
            wire::ready_for_query(&mut c.out);
            c.flush().await
        }
        Err(e) => c.command_error(&e).await,
    }
}

fn show(c: &mut Conn, name: &str) -> Result<(), PgError> {
    let lname = name.to_ascii_lowercase();
    let cfg = c.ctl.config.read().clone();
    let value = match lname.as_str() {
        // The actual segment size of this cluster, not a configured default.
        "wal_segment_size" => Some(format_bytes(c.ctl.wal.segment_size())),
        "data_directory_mode" => Some("0700".to_owned()),
        "server_version" => Some("15.0".to_owned()),
        "server_version_num" => Some("150000".to_owned()),
        _ => cfg.show(&lname),
    };
    match value {
        Some(v) => {
            wire::result_row(&mut c.out, &results::show(name, &v));
            wire::command_complete(&mut c.out, "SHOW");
            Ok(())
        }
        None => Err(PgError::new(
            sqlstate::UNDEFINED_OBJECT,
            format!("unrecognized configuration parameter \"{name}\""),
        )),
    }
}

/// `SHOW`'s memory units, as PostgreSQL prints `wal_segment_size` (e.g. `16MB`).
fn format_bytes(b: u64) -> String {
    if b.is_multiple_of(1 << 30) {
        format!("{}GB", b >> 30)
    } else if b.is_multiple_of(1 << 20) {
        format!("{}MB", b >> 20)
    } else if b.is_multiple_of(1 << 10) {
        format!("{}kB", b >> 10)
    } else {
        format!("{b}B")
    }
}

/// The history of the current timeline (from its history file; timeline 1 has none).
pub(crate) fn load_history(ctl: &WalSndCtl) -> TimelineHistory {
    let tli = ctl.wal.timeline();
    let path = ctl.wal.dir().join(history_file_name(tli));
    match std::fs::read_to_string(&path) {
        Ok(s) => TimelineHistory::parse(tli, &s).unwrap_or_else(|e| {
            tracing::error!("{}: {e}", path.display());
            TimelineHistory::new(tli)
        }),
        Err(_) => TimelineHistory::new(tli),
    }
}

pub(crate) enum StreamEnd {
    /// An error before or instead of streaming: ErrorResponse, then ReadyForQuery.
    Command(PgError),
    /// The connection ends.
    Conn(End),
}

impl From<End> for StreamEnd {
    fn from(e: End) -> Self {
        StreamEnd::Conn(e)
    }
}

fn local_wal(ctl: &WalSndCtl) -> LocalWal {
    let p = ctl.buffer.positions();
    LocalWal {
        write_lsn: p.write_lsn.max(p.flush_lsn),
        flush_lsn: p.flush_lsn,
        buffer_start_lsn: ctl.buffer.start_lsn(),
    }
}

async fn start_replication(
    c: &mut Conn,
    slot_name: Option<String>,
    start: Lsn,
    timeline: Option<TimelineId>,
) -> Result<(), StreamEnd> {
    let ctl = c.ctl.clone();
    let history = load_history(&ctl);
    let flush = ctl.wal.flush_lsn();
    let plan = history
        .plan_start_replication(timeline, start, flush)
        .map_err(|e| StreamEnd::Command(e.to_pg_error()))?;
    if let Some(name) = &slot_name {
        ctl.slots
            .lock()
            .acquire(name, c.pid)
            .map_err(StreamEnd::Command)?;
    }
    if let Some((at, next)) = plan.end_of_timeline
        && at == start
    {
        // Nothing to stream on the old timeline: PostgreSQL skips the copy and sends the
        // end-of-timeline result set at once.
        wire::result_row(&mut c.out, &results::end_of_timeline(next, at));
        wire::command_complete(&mut c.out, "SELECT");
        wire::command_complete(&mut c.out, "START_STREAMING");
        return Ok(());
    }
    // The WAL still has to exist: a start point in a removed segment is PostgreSQL's
    // "requested WAL segment ... has already been removed".
    let seg = ctl.wal.segment_size();
    let local = local_wal(&ctl);
    if start < local.buffer_start_lsn {
        let path = wal::segment::segment_path(
            ctl.wal.dir(),
            plan.timeline,
            start.segment_number(seg),
            seg,
        );
        if !path.exists() {
            return Err(StreamEnd::Command(PgError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!(
                    "requested WAL segment {} has already been removed",
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            )));
        }
    }
    wire::copy_response(&mut c.out, b'W');
    c.flush().await?;
    let config = WalSenderConfig {
        wal_sender_timeout: ctl.settings.read().wal_sender_timeout,
        segment_size: seg,
        ..WalSenderConfig::default()
    };
    let mut st = Stream {
        sender: WalSender::new(config, Instant::now()),
        lags: LagTracker::default(),
        reader: wal::reader::WalReader::new(ctl.wal.dir(), seg, plan.timeline, start),
        slot_name,
        end_of_tli: None,
    };
    let mut positions = ctl.buffer.subscribe();
    let uses_slot = st.slot_name.is_some();
    let actions = st
        .sender
        .start_streaming(plan, local, uses_slot, Instant::now());
    if let Some(e) = st.execute(c, actions)? {
        return finish_stream(c, e).await;
    }
    c.flush().await?;
    let direct = c
        .direct_sock
        .as_ref()
        .and_then(|s| s.try_clone().ok())
        .map(|s| DirectGuard::new(&ctl, s));
    let mut shutdown = c.shutdown.clone();
    // Once stopping, an unresponsive standby may delay shutdown by at most this long: what
    // it has not confirmed is still in our WAL, and a shutdown must finish.
    const STOPPING_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
    let mut stopping_since: Option<Instant> = None;
    loop {
        if stopping_since.is_some_and(|t| t.elapsed() > STOPPING_GRACE) {
            tracing::warn!(
                "walsender {}: standby did not confirm the end of WAL in time; closing for shutdown",
                c.pid
            );
            return Err(End::Quiet.into());
        }
        while st.sender.has_pending_wal() && st.end_of_tli.is_none() {
            let actions = st.sender.poll(Instant::now());
            if let Some(e) = st.execute(c, actions)? {
                return finish_stream(c, e).await;
            }
            // Read standby replies between chunks.
            while let Ok(f) = c.rx.try_recv() {
                if let Some(e) = st.on_frame(c, Some(f))? {
                    return finish_stream(c, e).await;
                }
            }
            if c.out.len() > 256 << 10 {
                c.flush().await?;
            }
        }
        c.flush().await?;
        let deadline = match (st.sender.next_deadline(), stopping_since) {
            (d, None) => d,
            (Some(d), Some(t)) => Some(d.min(t + STOPPING_GRACE)),
            (None, Some(t)) => Some(t + STOPPING_GRACE),
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        // Idle and caught up with the output flushed: the WAL writer may send what comes
        // next itself until this task wakes.
        if let Some(d) = &direct
            && stopping_since.is_none()
            && st.end_of_tli.is_none()
            && st.sender.direct_send_allowed()
        {
            d.direct.arm(st.sender.sent_lsn());
        }
        // Biased: a standby's reply that is already here is handled before a keepalive goes
        // out for a local flush, so the commits it confirms are released first.
        let event = tokio::select! {
            biased;
            f = c.rx.recv() => Event::Frame(f),
            r = positions.changed() => Event::LocalWal(r.is_ok()),
            _ = sleep => Event::Tick,
            _ = ctl.stop_requested(&mut shutdown), if stopping_since.is_none() => Event::Stop,
        };
        if let Some(d) = &direct {
            st.take_over_direct(c, &d.direct);
        }
        let actions = match event {
            Event::Frame(f) => {
                if let Some(e) = st.on_frame(c, f)? {
                    return finish_stream(c, e).await;
                }
                continue;
            }
            Event::LocalWal(false) => return Err(End::Quiet.into()),
            Event::LocalWal(true) => st.sender.on_local_wal(local_wal(&ctl), Instant::now()),
            Event::Tick => st.sender.poll(Instant::now()),
            Event::Stop => {
                stopping_since = Some(Instant::now());
                st.sender.on_shutdown(Instant::now())
            }
        };
        if let Some(e) = st.execute(c, actions)? {
            return finish_stream(c, e).await;
        }
    }
}

/// What woke the streaming loop.
enum Event {
    Frame(Option<Result<Frame, PgError>>),
    /// The local WAL moved (`false`: the WAL is gone, the server is going away).
    LocalWal(bool),
    Tick,
    Stop,
}

/// Registers a walsender for direct sends while it streams; unregisters when dropped.
struct DirectGuard {
    ctl: Arc<WalSndCtl>,
    direct: Arc<DirectSend>,
}

impl DirectGuard {
    fn new(ctl: &Arc<WalSndCtl>, sock: socket2::Socket) -> DirectGuard {
        let direct = Arc::new(DirectSend::new(sock));
        ctl.buffer.add_direct(&direct);
        DirectGuard {
            ctl: ctl.clone(),
            direct,
        }
    }
}

impl Drop for DirectGuard {
    fn drop(&mut self) {
        self.ctl.buffer.remove_direct(&self.direct);
    }
}

/// One START_REPLICATION stream: the sender state machine and what carrying out its actions
/// needs (lag samples, the segment reader, the slot, a historic timeline's end).
struct Stream {
    sender: WalSender,
    lags: LagTracker,
    reader: wal::reader::WalReader,
    slot_name: Option<String>,
    end_of_tli: Option<(TimelineId, Lsn)>,
}

impl Stream {
    /// Disarms the direct send and makes what the WAL writer sent meanwhile our own: the sent
    /// LSN (state machine, lag tracker, `pg_stat_replication`) and the unsent rest of a
    /// message, which goes out before anything else.
    fn take_over_direct(&mut self, c: &mut Conn, d: &DirectSend) {
        let taken = d.disarm();
        if let Some((end, wal_end, at)) = taken.sent
            && end > self.sender.sent_lsn()
        {
            self.sender.sent_directly(local_wal(&c.ctl), end, wal_end);
            self.lags.sent(end, at);
            let sent = self.sender.sent_lsn();
            c.ctl.update(c.slot, |e| e.sent_lsn = sent);
        }
        if !taken.pending.is_empty() {
            c.out.splice(0..0, taken.pending);
        }
    }

    /// A message from the standby (`None`: the connection is gone).
    fn on_frame(
        &mut self,
        c: &mut Conn,
        f: Option<Result<Frame, PgError>>,
    ) -> Result<Option<CopyEnd>, StreamEnd> {
        let f = match f {
            None => return Err(End::Closed.into()),
            Some(Err(e)) => return Err(End::Fatal(e).into()),
            Some(Ok(f)) => f,
        };
        match f.tag {
            b'd' => {
                let msg = StandbyMessage::decode(&f.body).map_err(|e| {
                    let mut e = e.to_pg_error();
                    e.severity = base::error::Severity::Fatal;
                    End::Fatal(e)
                })?;
                let actions = self.sender.on_standby_message(msg, Instant::now());
                self.execute(c, actions)
            }
            b'c' => match self.end_of_tli.take() {
                Some((next, at)) => Ok(Some(CopyEnd::EndOfTimeline(next, at))),
                None => Ok(Some(CopyEnd::ByStandby)),
            },
            b'X' => Err(End::Closed.into()),
            b'f' => Err(End::Fatal(PgError::fatal(
                sqlstate::QUERY_CANCELED,
                "COPY failed on the standby",
            ))
            .into()),
            other => Err(End::Fatal(PgError::fatal(
                sqlstate::PROTOCOL_VIOLATION,
                format!("invalid standby message type \"{}\"", other as char),
            ))
            .into()),
        }
    }

    /// Carries out the state machine's actions in order.
    fn execute(
        &mut self,
        c: &mut Conn,
        actions: Vec<SenderAction>,
    ) -> Result<Option<CopyEnd>, StreamEnd> {
        let ctl = c.ctl.clone();
        for a in actions {
            match a {
                SenderAction::SendWal {
                    start,
                    end,
                    wal_end,
                    ..
                } => {
                    let data = read_wal(&ctl, &mut self.reader, start, end)?;
                    let h = encode_xlog_data_header(start, wal_end, PgTimestamp::now());
                    let at = c.out.len();
                    c.out.push(b'd');
                    c.out
                        .extend_from_slice(&((4 + h.len() + data.len()) as u32).to_be_bytes());
                    c.out.extend_from_slice(&h);
                    c.out.extend_from_slice(&data);
                    debug_assert!(c.out.len() > at);
                    let sent = self.sender.sent_lsn();
                    self.lags.sent(end, Instant::now());
                    ctl.update(c.slot, |e| e.sent_lsn = sent);
                }
                SenderAction::SendKeepalive {
                    wal_end,
                    reply_requested,
                } => {
                    let k = PrimaryMessage::Keepalive(PrimaryKeepalive {
                        wal_end,
                        send_time: PgTimestamp::now(),
                        reply_requested,
                    });
                    wire::copy_data(&mut c.out, &k.encode());
                }
                SenderAction::StateChanged { to, .. } => {
                    if to == WalSndState::Streaming {
                        tracing::info!(
                            "walsender {}: standby has now caught up with the primary",
                            c.pid
                        );
                    }
                    ctl.update(c.slot, |e| e.state = to);
                }
                SenderAction::StandbyProgressed {
                    write_lsn,
                    flush_lsn,
                    apply_lsn,
                } => {
                    let reply = self.sender.stat().reply_time.map(|t| t.to_system_time());
                    let now = Instant::now();
                    let measured = [
                        self.lags.reported(0, write_lsn, now),
                        self.lags.reported(1, flush_lsn, now),
                        self.lags.reported(2, apply_lsn, now),
                    ];
                    ctl.update(c.slot, |e| {
                        for (lag, m) in e.lags.iter_mut().zip(measured) {
                            if m.is_some() {
                                *lag = m;
                            }
                        }
                        e.write_lsn = write_lsn;
                        e.flush_lsn = flush_lsn;
                        e.replay_lsn = apply_lsn;
                        e.reply_time = reply;
                    });
                }
                SenderAction::AdvanceSlot { restart_lsn } => {
                    if let Some(name) = &self.slot_name {
                        ctl.slots.lock().advance(name, restart_lsn);
                    }
                }
                SenderAction::HotStandbyFeedback(_) => {}
                SenderAction::EndOfTimeline {
                    next_timeline,
                    switchpoint,
                } => {
                    wire::copy_done(&mut c.out);
                    self.end_of_tli = Some((next_timeline, switchpoint));
                }
                SenderAction::Done => return Ok(Some(CopyEnd::Done)),
                SenderAction::Terminate(e) => {
                    tracing::warn!("walsender {}: {e}", c.pid);
                    return Err(match e {
                        SenderError::Timeout => End::Quiet.into(),
                        other => {
                            let mut pe = other.to_pg_error();
                            pe.severity = base::error::Severity::Fatal;
                            End::Fatal(pe).into()
                        }
                    });
                }
            }
        }
        Ok(None)
    }
}

/// How the copy stream ended.
enum CopyEnd {
    /// The standby sent CopyDone: answer CopyDone + CommandComplete, back to commands.
    ByStandby,
    /// A historic timeline ended; the standby's CopyDone has been received.
    EndOfTimeline(TimelineId, Lsn),
    /// Shutting down and everything was confirmed.
    Done,
}

async fn finish_stream(c: &mut Conn, e: CopyEnd) -> Result<(), StreamEnd> {
    match e {
        CopyEnd::ByStandby => {
            wire::copy_done(&mut c.out);
            wire::command_complete(&mut c.out, "START_STREAMING");
            Ok(())
        }
        CopyEnd::EndOfTimeline(next, at) => {
            wire::result_row(&mut c.out, &results::end_of_timeline(next, at));
            wire::command_complete(&mut c.out, "SELECT");
            wire::command_complete(&mut c.out, "START_STREAMING");
            Ok(())
        }
        CopyEnd::Done => {
            wire::copy_done(&mut c.out);
            let _ = c.flush().await;
            Err(End::Quiet.into())
        }
    }
}

fn read_wal(
    ctl: &WalSndCtl,
    reader: &mut wal::reader::WalReader,
    start: Lsn,
    end: Lsn,
) -> Result<Vec<u8>, End> {
    if let Some(b) = ctl.buffer.read(start, end) {
        return Ok(b);
    }
    let len = (end.0 - start.0) as usize;
    match reader.read_bytes(start, len) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(End::Fatal(PgError::fatal(
            sqlstate::UNDEFINED_OBJECT,
            format!("requested WAL segment for {start} has already been removed"),
        ))),
        Err(e) => Err(End::Fatal(PgError::fatal(
            sqlstate::IO_ERROR,
            e.to_string(),
        ))),
    }
}

/// `pg_stat_replication`'s `write_lag`/`flush_lag`/`replay_lag`, as PostgreSQL's
/// `LagTracker`: the time from sending WAL up to an LSN (lockstep sends as it writes, so this
/// is from when the primary wrote it) to the standby reporting that LSN written, flushed or
/// applied. One queue of (end LSN, time) samples per stage; a report consumes the samples it
/// covers and the newest one gives the lag. A stage that never reports keeps its last value.
#[derive(Default)]
pub(crate) struct LagTracker {
    stages: [std::collections::VecDeque<(Lsn, Instant)>; 3],
}

/// Samples kept per stage: PostgreSQL's `LAG_TRACKER_BUFFER_SIZE`. A stage that never
/// reports (pg_receivewal never applies) would otherwise grow without bound; dropping the
/// oldest only makes a late lag reading slightly low.
const LAG_SAMPLES: usize = 8192;

impl LagTracker {
    fn sent(&mut self, end: Lsn, now: Instant) {
        for q in &mut self.stages {
            if q.back().is_some_and(|(l, _)| *l >= end) {
                continue;
            }
            if q.len() >= LAG_SAMPLES {
                q.pop_front();
            }
            q.push_back((end, now));
        }
    }

    fn reported(&mut self, stage: usize, lsn: Lsn, now: Instant) -> Option<std::time::Duration> {
        let q = &mut self.stages[stage];
        let mut newest = None;
        while let Some(&(l, t)) = q.front() {
            if l > lsn {
                break;
            }
            newest = Some(t);
            q.pop_front();
        }
        newest.map(|t| now.saturating_duration_since(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lag_tracker_measures_per_stage() {
        let t0 = Instant::now();
        let mut l = LagTracker::default();
        l.sent(Lsn(100), t0);
        l.sent(Lsn(200), t0 + Duration::from_millis(10));
        assert_eq!(
            l.reported(0, Lsn(150), t0 + Duration::from_millis(30)),
            Some(Duration::from_millis(30))
        );
        assert_eq!(
            l.reported(0, Lsn(200), t0 + Duration::from_millis(30)),
            Some(Duration::from_millis(20))
        );
        // Nothing new covered: no new measurement.
        assert_eq!(
            l.reported(0, Lsn(200), t0 + Duration::from_millis(40)),
            None
        );
        // Stage 2 (apply) never reported: its samples stay bounded.
        for i in 0..(LAG_SAMPLES as u64 + 10) {
            l.sent(Lsn(300 + i), t0);
        }
        assert!(l.stages[2].len() <= LAG_SAMPLES);
        assert_eq!(show_format_check(), "16MB");
    }

    fn show_format_check() -> String {
        format_bytes(16 << 20)
    }
}
