//! The table of built-in parameters. Names, defaults, units and contexts follow PostgreSQL 15
//! (`guc.c`) unless the description says otherwise; lockstep's own parameters say "(lockstep)".

use super::GucContext::{Internal, Postmaster, Sighup, Superuser, User};
use super::GucType::{Bool, Enum, Int, Real, String as Str};
use super::Unit;
use super::{
    GucDef, INT_MAX, check_application_name, check_datestyle, check_encoding, check_isolation,
    check_standard_conforming, check_sync_commit, check_timezone,
};

/// `MAX_KILOBYTES` on 64-bit builds.
const MAX_KB: i64 = INT_MAX;

const fn def(
    name: &'static str,
    ty: super::GucType,
    default: &'static str,
    context: super::GucContext,
    description: &'static str,
) -> GucDef {
    GucDef {
        name,
        ty,
        default,
        context,
        report: false,
        description,
        check: None,
    }
}

const fn reported(mut d: GucDef) -> GucDef {
    d.report = true;
    d
}

const fn checked(mut d: GucDef, check: super::CheckHook) -> GucDef {
    d.check = Some(check);
    d
}

const LOG_LEVELS: &[&str] = &[
    "debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log",
    "fatal", "panic",
];
const CLIENT_LEVELS: &[&str] = &[
    "debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error",
];
const ISOLATION: &[&str] = &[
    "serializable",
    "repeatable read",
    "read committed",
    "read uncommitted",
];

pub static GUCS: &[GucDef] = &[
    // ----- connections -----
    def(
        "listen_addresses",
        Str,
        "localhost",
        Postmaster,
        "Sets the host name or IP address(es) to listen to.",
    ),
    def(
        "port",
        Int {
            min: 1,
            max: 65535,
            unit: Unit::None,
        },
        "5432",
        Postmaster,
        "Sets the TCP port the server listens on.",
    ),
    def(
        "max_connections",
        Int {
            min: 1,
            max: 262_143,
            unit: Unit::None,
        },
        "100",
        Postmaster,
        "Sets the maximum number of concurrent connections.",
    ),
    def(
        "unix_socket_directories",
        Str,
        "/tmp",
        Postmaster,
        "Sets the directories where Unix-domain sockets will be created.",
    ),
    def(
        "authentication_timeout",
        Int {
            min: 1,
            max: 600,
            unit: Unit::S,
        },
        "60",
        Sighup,
        "Sets the maximum allowed time to complete client authentication.",
    ),
    def(
        "password_encryption",
        Enum(&["md5", "scram-sha-256"]),
        "scram-sha-256",
        User,
        "Chooses the algorithm for encrypting passwords.",
    ),
    // ----- files -----
    def(
        "data_directory",
        Str,
        "",
        Postmaster,
        "Sets the server's data directory.",
    ),
    def(
        "config_file",
        Str,
        "",
        Postmaster,
        "Sets the server's main configuration file.",
    ),
    def(
        "hba_file",
        Str,
        "",
        Postmaster,
        "Sets the server's \"hba\" configuration file.",
    ),
    // ----- WAL and durability -----
    def(
        "fsync",
        Bool,
        "on",
        Sighup,
        "Forces synchronization of updates to disk.",
    ),
    def(
        "wal_level",
        Enum(&["minimal", "replica", "logical"]),
        "replica",
        Postmaster,
        "Sets the level of information written to the WAL (lockstep always writes full redo records; the value is reported for tools).",
    ),
    def(
        "wal_segment_size",
        Int {
            min: 1024 * 1024,
            max: 1024 * 1024 * 1024,
            unit: Unit::Bytes,
        },
        "16777216",
        Internal,
        "Shows the size of write ahead log segments.",
    ),
    def(
        "checkpoint_timeout",
        Int {
            min: 30,
            max: 86_400,
            unit: Unit::S,
        },
        "300",
        Sighup,
        "Sets the maximum time between automatic WAL checkpoints.",
    ),
    def(
        "max_wal_size",
        Int {
            min: 2,
            max: MAX_KB,
            unit: Unit::Mb,
        },
        "1024",
        Sighup,
        "Sets the WAL size that triggers a checkpoint.",
    ),
    def(
        "wal_mirror_directory",
        Str,
        "",
        Postmaster,
        "(lockstep) Writes a second copy of the WAL into this directory, through the WAL write hook; empty = off.",
    ),
    // ----- replication -----
    checked(
        def(
            "synchronous_commit",
            Str,
            "on",
            User,
            "Sets the current transaction's synchronization level; in lockstep also the moment the commit becomes visible to other sessions.",
        ),
        check_sync_commit,
    ),
    def(
        "synchronous_standby_names",
        Str,
        "",
        Sighup,
        "Number of synchronous standbys and list of names of potential synchronous ones.",
    ),
    def(
        "synchronous_replication_timeout",
        Int {
            min: 0,
            max: INT_MAX,
            unit: Unit::Ms,
        },
        "0",
        Sighup,
        "(lockstep) Maximum time a commit waits for the synchronous standbys; read by the synchronous replication layer; 0 = off (wait until confirmed or cancelled).",
    ),
    def(
        "max_wal_senders",
        Int {
            min: 0,
            max: 262_143,
            unit: Unit::None,
        },
        "10",
        Postmaster,
        "Sets the maximum number of simultaneously running WAL sender processes.",
    ),
    def(
        "max_replication_slots",
        Int {
            min: 0,
            max: 262_143,
            unit: Unit::None,
        },
        "10",
        Postmaster,
        "Sets the maximum number of simultaneously defined replication slots.",
    ),
    def(
        "max_slot_wal_keep_size",
        Int {
            min: -1,
            max: MAX_KB,
            unit: Unit::Mb,
        },
        // Bounded by default (PostgreSQL: -1, unlimited): with unlimited retention a dead
        // standby's slot keeps every WAL segment until the primary's disk fills and the
        // primary stops (anchors: users' most common slot complaint). Past 1 GB behind, the
        // slot becomes `lost` and the primary keeps working; -1 restores PostgreSQL's rule.
        "1024",
        Sighup,
        "Sets the maximum WAL size that can be reserved by replication slots.",
    ),
    def(
        "wal_keep_size",
        Int {
            min: 0,
            max: MAX_KB,
            unit: Unit::Mb,
        },
        "0",
        Sighup,
        "Sets the size of WAL files held for standby servers.",
    ),
    def(
        "wal_sender_timeout",
        Int {
            min: 0,
            max: INT_MAX,
            unit: Unit::Ms,
        },
        "60000",
        User,
        "Sets the maximum time to wait for WAL replication.",
    ),
    def(
        "wal_receiver_timeout",
        Int {
            min: 0,
            max: INT_MAX,
            unit: Unit::Ms,
        },
        "60000",
        Sighup,
        "Sets the maximum wait time to receive data from the sending server.",
    ),
    def(
        "wal_receiver_status_interval",
        Int {
            min: 0,
            max: INT_MAX / 1000,
            unit: Unit::S,
        },
        "10",
        Sighup,
        "Sets the maximum interval between WAL receiver status reports to the sending server.",
    ),
    def(
        "primary_conninfo",
        Str,
        "",
        Sighup,
        "Sets the connection string to be used to connect to the sending server.",
    ),
    def(
        "primary_slot_name",
        Str,
        "",
        Sighup,
        "Sets the name of the replication slot to use on the sending server.",
    ),
    def(
        "recovery_target_timeline",
        Str,
        "latest",
        Postmaster,
        "Specifies the timeline to recover into.",
    ),
    def(
        "hot_standby",
        Bool,
        "on",
        Postmaster,
        "Allows connections and queries during recovery.",
    ),
    def(
        "hot_standby_feedback",
        Bool,
        "off",
        Sighup,
        "Allows feedback from a hot standby to the primary that will avoid query conflicts.",
    ),
    reported(def(
        "in_hot_standby",
        Bool,
        "off",
        Internal,
        "Shows whether hot standby is currently active.",
    )),
    def(
        "cluster_name",
        Str,
        "",
        Postmaster,
        "Sets the name of the cluster, which is included in the process title.",
    ),
    // ----- locks and timeouts -----
    def(
        "lock_timeout",
        Int {
            min: 0,
            max: INT_MAX,
            unit: Unit::Ms,
        },
        "0",
        User,
        "Sets the maximum allowed duration of any wait for a lock.",
    ),
    def(
        "statement_timeout",
        Int {
            min: 0,
            max: INT_MAX,
            unit: Unit::Ms,
        },
        "0",
        User,
        "Sets the maximum allowed duration of any statement.",
    ),
    def(
        "deadlock_timeout",
        Int {
            min: 1,
            max: INT_MAX,
            unit: Unit::Ms,
        },
        "1000",
        Superuser,
        "Sets the time to wait on a lock before checking for deadlock (lockstep checks for deadlock at once, so this has no effect).",
    ),
    def(
        "idle_in_transaction_session_timeout",
        Int {
            min: 0,
            max: INT_MAX,
            unit: Unit::Ms,
        },
        "0",
        User,
        "Sets the maximum allowed idle time between queries, when in a transaction.",
    ),
    // ----- client connection defaults -----
    reported(checked(
        def(
            "application_name",
            Str,
            "",
            User,
            "Sets the application name to be reported in statistics and logs.",
        ),
        check_application_name,
    )),
    reported(checked(
        def(
            "client_encoding",
            Str,
            "UTF8",
            User,
            "Sets the client's character set encoding (UTF8 and SQL_ASCII only).",
        ),
        check_encoding,
    )),
    reported(checked(
        def(
            "DateStyle",
            Str,
            "ISO, MDY",
            User,
            "Sets the display format for date and time values (ISO output only).",
        ),
        check_datestyle,
    )),
    reported(def(
        "IntervalStyle",
        Enum(&["postgres", "postgres_verbose", "sql_standard", "iso_8601"]),
        "postgres",
        User,
        "Sets the display format for interval values (lockstep has no interval type; no effect).",
    )),
    reported(checked(
        def(
            "TimeZone",
            Str,
            "UTC",
            User,
            "Sets the time zone for displaying and interpreting time stamps.",
        ),
        check_timezone,
    )),
    reported(def(
        "search_path",
        Str,
        "\"$user\", public",
        User,
        "Sets the schema search order for names that are not schema-qualified (lockstep has one schema, public; no effect).",
    )),
    reported(checked(
        def(
            "standard_conforming_strings",
            Bool,
            "on",
            User,
            "Causes '...' strings to treat backslashes literally (always on in lockstep).",
        ),
        check_standard_conforming,
    )),
    def(
        "extra_float_digits",
        Int {
            min: -15,
            max: 3,
            unit: Unit::None,
        },
        "1",
        User,
        "Sets the number of digits displayed for floating-point values (lockstep always prints the shortest exact form).",
    ),
    checked(
        def(
            "default_transaction_isolation",
            Enum(ISOLATION),
            "read committed",
            User,
            "Sets the transaction isolation level of each new transaction (READ COMMITTED only).",
        ),
        check_isolation,
    ),
    checked(
        def(
            "transaction_isolation",
            Enum(ISOLATION),
            "read committed",
            User,
            "Sets the current transaction's isolation level (READ COMMITTED only).",
        ),
        check_isolation,
    ),
    def(
        "transaction_read_only",
        Bool,
        "off",
        User,
        "Sets the current transaction's read-only status.",
    ),
    reported(def(
        "default_transaction_read_only",
        Bool,
        "off",
        User,
        "Sets the default read-only status of new transactions.",
    )),
    def(
        "client_min_messages",
        Enum(CLIENT_LEVELS),
        "notice",
        User,
        "Sets the message levels that are sent to the client.",
    ),
    def(
        "row_security",
        Bool,
        "on",
        User,
        "Enable row security (lockstep has no row security policies; no effect).",
    ),
    def(
        "lc_messages",
        Str,
        "C",
        Superuser,
        "Sets the language in which messages are displayed (messages are in English; no effect).",
    ),
    def(
        "lc_monetary",
        Str,
        "C",
        User,
        "Sets the locale for formatting monetary amounts (no effect).",
    ),
    def(
        "lc_numeric",
        Str,
        "C",
        User,
        "Sets the locale for formatting numbers (no effect).",
    ),
    def(
        "lc_time",
        Str,
        "C",
        User,
        "Sets the locale for formatting date and time values (no effect).",
    ),
    // ----- resources and planner (accepted, no effect) -----
    def(
        "work_mem",
        Int {
            min: 64,
            max: MAX_KB,
            unit: Unit::Kb,
        },
        "4096",
        User,
        "Sets the maximum memory to be used for query workspaces (no effect: lockstep sorts in memory).",
    ),
    def(
        "maintenance_work_mem",
        Int {
            min: 1024,
            max: MAX_KB,
            unit: Unit::Kb,
        },
        "65536",
        User,
        "Sets the maximum memory to be used for maintenance operations (no effect).",
    ),
    def(
        "shared_buffers",
        Int {
            min: 16,
            max: INT_MAX / 2,
            unit: Unit::Blocks,
        },
        "16384",
        Postmaster,
        "Sets the number of shared memory buffers used by the server (no effect: lockstep keeps all data in memory).",
    ),
    def(
        "effective_cache_size",
        Int {
            min: 1,
            max: INT_MAX,
            unit: Unit::Blocks,
        },
        "524288",
        User,
        "Sets the planner's assumption about the total size of the data caches (no effect).",
    ),
    def(
        "random_page_cost",
        Real {
            min: 0.0,
            max: f64::MAX,
        },
        "4",
        User,
        "Sets the planner's estimate of the cost of a nonsequentially fetched disk page (no effect).",
    ),
    def(
        "jit",
        Bool,
        "on",
        User,
        "Allow JIT compilation (lockstep has no JIT; no effect).",
    ),
    def(
        "max_parallel_workers_per_gather",
        Int {
            min: 0,
            max: 1024,
            unit: Unit::None,
        },
        "2",
        User,
        "Sets the maximum number of parallel processes per executor node (lockstep has no parallel query; no effect).",
    ),
    // ----- logging -----
    def(
        "log_min_messages",
        Enum(LOG_LEVELS),
        "warning",
        Superuser,
        "Sets the message levels that are logged.",
    ),
    // ----- preset, reported -----
    reported(def(
        "server_version",
        Str,
        "15.0",
        Internal,
        "Shows the server version.",
    )),
    def(
        "server_version_num",
        Int {
            min: 150_000,
            max: 150_000,
            unit: Unit::None,
        },
        "150000",
        Internal,
        "Shows the server version as an integer.",
    ),
    reported(def(
        "server_encoding",
        Str,
        "UTF8",
        Internal,
        "Shows the server (database) character set encoding.",
    )),
    reported(def(
        "integer_datetimes",
        Bool,
        "on",
        Internal,
        "Shows whether datetimes are integer based.",
    )),
    reported(def(
        "is_superuser",
        Bool,
        "off",
        Internal,
        "Shows whether the current user is a superuser.",
    )),
    reported(def(
        "session_authorization",
        Str,
        "",
        Internal,
        "Sets the session user name.",
    )),
];
