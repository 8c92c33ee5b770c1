//! The primary's side of streaming replication (to be written: replication connections,
//! walsenders, synchronous replication release, slots, BASE_BACKUP).
