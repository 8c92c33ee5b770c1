//! Roles: the role file `DIR/global/pg_authid` and the in-memory `RoleStore` over it.
//!
//! The file is text, one role per line, three fields separated by one TAB:
//!
//! ```text
//! # name<TAB>flags<TAB>password
//! postgres<TAB>superuser,login,replication<TAB>SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>
//! app<TAB>login<TAB>-
//! ```
//!
//! `flags` is a comma-separated subset of `superuser`, `login`, `replication` (`-` or empty for
//! none); `password` is a SCRAM-SHA-256 verifier in PostgreSQL's `rolpassword` format, or `-`
//! (or empty) for a role without a password. Lines starting with `#` and blank lines are
//! ignored. Unknown flags and malformed lines are errors naming `file:line`: a role file is
//! security-relevant, so it is never half-read.
//!
//! Role names are 1 to 63 bytes (PostgreSQL's NAMEDATALEN - 1), contain no control characters
//! (the file format uses TAB and newline as separators) and do not start with `#` (it would read
//! as a comment).
//!
//! Concurrency: readers (`get`, every connection attempt) take a short read lock and clone an
//! `Arc` of the map. Writers (`create_role`, `alter_role`, `drop_role`, `set_password`,
//! `reload`) are serialised by `write_lock`; a writer builds the new map, saves it, and only then
//! swaps it in, so memory never shows a change the file does not have, and readers are not
//! blocked during the fsyncs.
//!
//! Durability: a save writes `pg_authid.tmp`, fsyncs it, renames it over `pg_authid` and fsyncs
//! the directory, so after a crash the file holds either the old or the new set of roles. A
//! failed save leaves the store unchanged and returns the error; nothing retries an fsync.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base::PgError;
use base::error::sqlstate;
use parking_lot::{Mutex, RwLock};

use crate::scram::{SCRAM_ITERATIONS_DEFAULT, ScramVerifier, scram_verifier};

/// PostgreSQL's NAMEDATALEN - 1: the longest identifier in bytes.
pub const ROLE_NAME_MAX_LEN: usize = 63;

/// The role file, relative to the data directory.
pub const ROLE_FILE: &str = "global/pg_authid";

/// One role, as `pg_authid` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// `rolsuper`: bypasses every permission check (and may start replication).
    pub superuser: bool,
    /// `rolcanlogin`: may open a session.
    pub login: bool,
    /// `rolreplication`: may open a replication connection.
    pub replication: bool,
    /// `rolpassword`; `None` means password authentication always fails for this role.
    pub password: Option<ScramVerifier>,
}

impl Role {
    /// A role with no attributes and no password (`CREATE ROLE name`).
    pub fn new(name: impl Into<String>) -> Role {
        Role {
            name: name.into(),
            superuser: false,
            login: false,
            replication: false,
            password: None,
        }
    }

    /// The bootstrap superuser `lockstep init` creates (like initdb's).
    pub fn bootstrap_superuser(name: impl Into<String>) -> Role {
        Role {
            superuser: true,
            login: true,
            replication: true,
            ..Role::new(name)
        }
    }

    /// Whether this role may start a WAL sender (`rolreplication` or superuser).
    pub fn may_replicate(&self) -> bool {
        self.superuser || self.replication
    }

    fn flags_text(&self) -> String {
        let mut flags = Vec::new();
        if self.superuser {
            flags.push("superuser");
        }
        if self.login {
            flags.push("login");
        }
        if self.replication {
            flags.push("replication");
        }
        if flags.is_empty() {
            "-".to_owned()
        } else {
            flags.join(",")
        }
    }
}

/// Why the role file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoleFileError {
    #[error("could not read role file \"{}\": {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("could not write role file \"{}\": {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Why a role change was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoleError {
    #[error("role \"{0}\" already exists")]
    AlreadyExists(String),
    #[error("role \"{0}\" does not exist")]
    NotFound(String),
    #[error("invalid role name \"{name}\": {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error(transparent)]
    File(#[from] RoleFileError),
}

impl RoleError {
    /// The error as a client sees it, with PostgreSQL's SQLSTATE.
    pub fn to_pg_error(&self) -> PgError {
        let code = match self {
            RoleError::AlreadyExists(_) => sqlstate::DUPLICATE_OBJECT,
            RoleError::NotFound(_) => sqlstate::UNDEFINED_OBJECT,
            RoleError::InvalidName { .. } => sqlstate::INVALID_PARAMETER_VALUE,
            RoleError::File(_) => sqlstate::IO_ERROR,
        };
        PgError::new(code, self.to_string())
    }
}

type RoleMap = BTreeMap<String, Role>;

/// The set of roles, shared by every connection; see the module header for the rules.
#[derive(Debug)]
pub struct RoleStore {
    /// `None` for an in-memory store (tests, embedding): changes are not persisted.
    path: Option<PathBuf>,
    /// The current roles. Replaced whole (under `write_lock`) after a successful save.
    roles: RwLock<Arc<RoleMap>>,
    /// Serialises writers, so two changes never race to save different maps.
    write_lock: Mutex<()>,
}

impl RoleStore {
    /// Loads `DIR/global/pg_authid`.
    pub fn open(data_dir: &Path) -> Result<RoleStore, RoleFileError> {
        let path = data_dir.join(ROLE_FILE);
        let roles = load_file(&path)?;
        Ok(RoleStore {
            path: Some(path),
            roles: RwLock::new(Arc::new(roles)),
            write_lock: Mutex::new(()),
        })
    }

    /// Creates `DIR/global/` and a role file holding `roles` (for `lockstep init`). Fails if
    /// the file already exists.
    pub fn initialize(data_dir: &Path, roles: Vec<Role>) -> Result<RoleStore, RoleError> {
        let path = data_dir.join(ROLE_FILE);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| RoleFileError::Write {
                path: path.clone(),
                source,
            })?;
        }
        if path.exists() {
            return Err(RoleFileError::Write {
                path,
                source: io::Error::new(io::ErrorKind::AlreadyExists, "file exists"),
            }
            .into());
        }
        let map = build_map(roles)?;
        save_file(&path, &map)?;
        Ok(RoleStore {
            path: Some(path),
            roles: RwLock::new(Arc::new(map)),
            write_lock: Mutex::new(()),
        })
    }

    /// A store that lives only in memory.
    pub fn in_memory(roles: Vec<Role>) -> Result<RoleStore, RoleError> {
        Ok(RoleStore {
            path: None,
            roles: RwLock::new(Arc::new(build_map(roles)?)),
            write_lock: Mutex::new(()),
        })
    }

    /// The file this store saves to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The role named `name` (exact, case-sensitive match, as PostgreSQL's catalog lookup).
    pub fn get(&self, name: &str) -> Option<Role> {
        self.roles.read().get(name).cloned()
    }

    /// All roles, ordered by name.
    pub fn list(&self) -> Vec<Role> {
        self.roles.read().values().cloned().collect()
    }

    /// `CREATE ROLE`.
    pub fn create_role(&self, role: Role) -> Result<(), RoleError> {
        validate_name(&role.name)?;
        self.change(|map| {
            if map.contains_key(&role.name) {
                return Err(RoleError::AlreadyExists(role.name));
            }
            map.insert(role.name.clone(), role);
            Ok(())
        })
    }

    /// `ALTER ROLE`: applies `edit` to the role. The name cannot be changed this way.
    pub fn alter_role(&self, name: &str, edit: impl FnOnce(&mut Role)) -> Result<(), RoleError> {
        self.change(|map| {
            let role = map
                .get_mut(name)
                .ok_or_else(|| RoleError::NotFound(name.to_owned()))?;
            edit(role);
            role.name = name.to_owned();
            Ok(())
        })
    }

    /// `DROP ROLE`.
    pub fn drop_role(&self, name: &str) -> Result<(), RoleError> {
        self.change(|map| {
            map.remove(name)
                .map(|_| ())
                .ok_or_else(|| RoleError::NotFound(name.to_owned()))
        })
    }

    /// `ALTER ROLE … PASSWORD`: `None` removes the password. A string that already is a
    /// SCRAM-SHA-256 verifier is stored as it is (PostgreSQL does the same, so `pg_dumpall`
    /// output restores the same passwords); anything else is hashed with a fresh salt.
    pub fn set_password(&self, name: &str, password: Option<&str>) -> Result<(), RoleError> {
        let verifier = password.map(|p| {
            p.parse::<ScramVerifier>()
                .unwrap_or_else(|_| scram_verifier(p, SCRAM_ITERATIONS_DEFAULT))
        });
        self.alter_role(name, |role| role.password = verifier)
    }

    /// Re-reads the file (after an edit by hand). On error the old roles stay in force.
    pub fn reload(&self) -> Result<(), RoleFileError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let _writer = self.write_lock.lock();
        let map = load_file(path)?;
        *self.roles.write() = Arc::new(map);
        Ok(())
    }

    /// Runs one change: copy, edit, save, swap. See the module header.
    fn change(
        &self,
        edit: impl FnOnce(&mut RoleMap) -> Result<(), RoleError>,
    ) -> Result<(), RoleError> {
        let _writer = self.write_lock.lock();
        let mut map = RoleMap::clone(&self.roles.read());
        edit(&mut map)?;
        if let Some(path) = &self.path {
            save_file(path, &map)?;
        }
        *self.roles.write() = Arc::new(map);
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), RoleError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > ROLE_NAME_MAX_LEN {
        "longer than 63 bytes"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else if name.starts_with('#') {
        "starts with '#'"
    } else {
        return Ok(());
    };
    Err(RoleError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn build_map(roles: Vec<Role>) -> Result<RoleMap, RoleError> {
    let mut map = RoleMap::new();
    for role in roles {
        validate_name(&role.name)?;
        if map.contains_key(&role.name) {
            return Err(RoleError::AlreadyExists(role.name));
        }
        map.insert(role.name.clone(), role);
    }
    Ok(map)
}

fn load_file(path: &Path) -> Result<RoleMap, RoleFileError> {
    let text = fs::read_to_string(path).map_err(|source| RoleFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_roles(&text, path)
}

fn parse_roles(text: &str, path: &Path) -> Result<RoleMap, RoleFileError> {
    let mut map = RoleMap::new();
    for (i, line) in text.lines().enumerate() {
        let syntax = |message: String| RoleFileError::Syntax {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, flags, password] = fields[..] else {
            return Err(syntax(format!(
                "expected 3 TAB-separated fields (name, flags, password), found {}",
                fields.len()
            )));
        };
        validate_name(name).map_err(|e| syntax(e.to_string()))?;
        let mut role = Role::new(name);
        for flag in flags.split(',').map(str::trim) {
            match flag {
                "" | "-" => {}
                "superuser" => role.superuser = true,
                "login" => role.login = true,
                "replication" => role.replication = true,
                other => return Err(syntax(format!("unknown role flag \"{other}\""))),
            }
        }
        role.password = match password.trim() {
            "" | "-" => None,
            v => Some(v.parse().map_err(|e| syntax(format!("{e}")))?),
        };
        if map.insert(name.to_owned(), role).is_some() {
            return Err(syntax(format!("role \"{name}\" appears twice")));
        }
    }
    Ok(map)
}

fn render_roles(map: &RoleMap) -> String {
    let mut out = String::from(
        "# lockstep roles (pg_authid). One role per line: name<TAB>flags<TAB>password\n\
         # flags: comma-separated superuser,login,replication or -; password: SCRAM-SHA-256 \
         verifier or -\n",
    );
    for role in map.values() {
        let password = role
            .password
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            role.name,
            role.flags_text(),
            password
        ));
    }
    out
}

/// Writes the file atomically: temp file, fsync, rename, fsync the directory.
fn save_file(path: &Path, map: &RoleMap) -> Result<(), RoleFileError> {
    let write_err = |source| RoleFileError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(write_err)?;
    file.write_all(render_roles(map).as_bytes())
        .map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(write_err)?;
    // The rename is durable only once the directory entry is.
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scram::verify_plain_password;

    fn store_in(dir: &Path) -> RoleStore {
        RoleStore::initialize(dir, vec![Role::bootstrap_superuser("postgres")]).unwrap()
    }

    #[test]
    fn initialize_then_open_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store.set_password("postgres", Some("pw1")).unwrap();
        store
            .create_role(Role {
                login: true,
                ..Role::new("app user")
            })
            .unwrap();
        store.create_role(Role::new("nologin")).unwrap();

        let again = RoleStore::open(dir.path()).unwrap();
        assert_eq!(again.list(), store.list());
        let pg = again.get("postgres").unwrap();
        assert!(pg.superuser && pg.login && pg.replication && pg.may_replicate());
        assert!(verify_plain_password(pg.password.as_ref().unwrap(), "pw1"));
        let app = again.get("app user").unwrap();
        assert!(app.login && !app.superuser && !app.may_replicate());
        assert_eq!(app.password, None);
        assert!(!again.get("nologin").unwrap().login);
        assert!(again.get("Postgres").is_none(), "names are case-sensitive");

        let text = fs::read_to_string(dir.path().join(ROLE_FILE)).unwrap();
        assert!(text.contains("app user\tlogin\t-\n"), "{text}");
        assert!(text.contains("nologin\t-\t-\n"), "{text}");
        assert!(!dir.path().join("global/pg_authid.tmp").exists());
    }

    #[test]
    fn initialize_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        store_in(dir.path());
        assert!(matches!(
            RoleStore::initialize(dir.path(), vec![]),
            Err(RoleError::File(RoleFileError::Write { .. }))
        ));
    }

    #[test]
    fn create_alter_drop() {
        let store = RoleStore::in_memory(vec![]).unwrap();
        store.create_role(Role::new("a")).unwrap();
        assert!(matches!(
            store.create_role(Role::new("a")),
            Err(RoleError::AlreadyExists(_))
        ));
        let e = store.create_role(Role::new("a")).unwrap_err().to_pg_error();
        assert_eq!(e.code, sqlstate::DUPLICATE_OBJECT);
        assert_eq!(e.message, "role \"a\" already exists");

        store
            .alter_role("a", |r| {
                r.login = true;
                r.name = "renamed".into();
            })
            .unwrap();
        let a = store.get("a").unwrap();
        assert!(a.login);
        assert!(store.get("renamed").is_none());

        store.drop_role("a").unwrap();
        let e = store.drop_role("a").unwrap_err();
        assert!(matches!(e, RoleError::NotFound(_)));
        assert_eq!(e.to_pg_error().code, sqlstate::UNDEFINED_OBJECT);
        assert!(store.alter_role("zz", |_| {}).is_err());
    }

    #[test]
    fn set_password_hashes_or_keeps_verifiers() {
        let store = RoleStore::in_memory(vec![Role::new("u")]).unwrap();
        store.set_password("u", Some("secret")).unwrap();
        let v = store.get("u").unwrap().password.unwrap();
        assert!(verify_plain_password(&v, "secret"));
        // Setting the verifier text stores it unchanged (as PostgreSQL does).
        store.set_password("u", Some(&v.to_string())).unwrap();
        assert_eq!(store.get("u").unwrap().password, Some(v));
        store.set_password("u", None).unwrap();
        assert_eq!(store.get("u").unwrap().password, None);
        assert!(store.set_password("nobody", Some("x")).is_err());
    }

    #[test]
    fn invalid_names_are_refused() {
        let store = RoleStore::in_memory(vec![]).unwrap();
        for bad in ["", "a\tb", "a\nb", "#x", &"x".repeat(64)] {
            assert!(
                matches!(
                    store.create_role(Role::new(bad)),
                    Err(RoleError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
        store.create_role(Role::new("x".repeat(63))).unwrap();
        store.create_role(Role::new("Ünïcödé with spaces")).unwrap();
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let path = Path::new("/data/global/pg_authid");
        let ok = "# comment\n\npostgres\tsuperuser,login\t-\nb\t\t\n";
        let map = parse_roles(ok, path).unwrap();
        assert_eq!(map.len(), 2);
        assert!(!map["b"].login);
        for (text, line, needle) in [
            ("a\tlogin\n", 1, "expected 3"),
            ("# c\na\tlogin\t-\tx\n", 2, "found 4"),
            ("a\tlogin,wizard\t-\n", 1, "unknown role flag \"wizard\""),
            ("a\tlogin\tmd5abc\n", 1, "invalid SCRAM-SHA-256 verifier"),
            ("a\t-\t-\na\t-\t-\n", 2, "appears twice"),
            ("\t-\t-\n", 1, "empty"),
        ] {
            let err = parse_roles(text, path).unwrap_err();
            let RoleFileError::Syntax {
                line: l, message, ..
            } = &err
            else {
                panic!("{err}");
            };
            assert_eq!(*l, line, "{text:?}");
            assert!(message.contains(needle), "{message}");
            assert!(
                err.to_string()
                    .starts_with(&format!("/data/global/pg_authid:{line}: "))
            );
        }
    }

    #[test]
    fn reload_picks_up_edits_and_keeps_old_roles_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let file = dir.path().join(ROLE_FILE);
        fs::write(&file, "postgres\tsuperuser,login\t-\nnew\tlogin\t-\n").unwrap();
        store.reload().unwrap();
        assert!(store.get("new").is_some());
        fs::write(&file, "broken line\n").unwrap();
        assert!(store.reload().is_err());
        assert!(store.get("new").is_some(), "old roles stay in force");
    }

    #[test]
    fn failed_save_leaves_the_store_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        // Make the directory unusable for the temp file: replace it by a file.
        fs::remove_dir_all(dir.path().join("global")).unwrap();
        fs::write(dir.path().join("global"), b"not a directory").unwrap();
        assert!(matches!(
            store.create_role(Role::new("x")),
            Err(RoleError::File(RoleFileError::Write { .. }))
        ));
        assert!(store.get("x").is_none());
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store_in(dir.path()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        store.create_role(Role::new(format!("r{t}_{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.list().len(), 41);
        assert_eq!(RoleStore::open(dir.path()).unwrap().list().len(), 41);
    }
}
