//! Shared bodies of the fuzz targets that need more than one crate.

use std::sync::OnceLock;

/// Feeds `data` as SQL text to a session's parse and prepare entry points.
pub fn sql_entry(data: &[u8]) {
    static ENGINE: OnceLock<std::sync::Arc<sql::Engine>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| sql::Engine::for_tests().0);
    let text = String::from_utf8_lossy(data);
    let Ok(mut session) = engine.open_session(sql::SessionInfo {
        user: "postgres".into(),
        database: "postgres".into(),
        superuser: true,
        ..Default::default()
    }) else {
        return;
    };
    let _ = session.parse_batch(&text);
    let _ = session.prepare(&text, &[]);
    let _ = session.prepare(&text, &[23, 25, 0]);
}
